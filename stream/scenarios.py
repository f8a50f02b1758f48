"""What-if scenario files: alternative plans for chosen series or stores, read from JSON or CSV.

One row changes the plan of one series (``store`` + ``sku``) or of every series of a store (``store`` alone)
for one bucket (``for``), a range of buckets (``for`` .. ``until``, both included) or, with neither, every
bucket of the horizon (times as in events, or a date or a time without offset, read as UTC). Rows with the
same ``scenario`` name make one scenario; a file may hold several.
``promo``, ``price``, ``open`` and ``event`` are read as in a plan event (docs/events.md): a field the row
gives replaces the stored plan's, a field it leaves out keeps the stored plan's; ``event`` null means no
event. A row that changes nothing, or names an unknown column, is refused (a misspelt ``Promo`` would
otherwise compare the baseline with itself).

Formats (:func:`parse`): JSON lines, one JSON array of objects, or CSV with a header row (an empty cell is
a field left out; ``promo``/``open`` cells ``true``/``false``/``1``/``0``/``yes``/``no``; an ``event`` cell
``null`` or ``0`` means no event).

>>> rows = parse('{"scenario": "promo", "store": "1", "sku": "all", "for": "2015-08-03", "promo": true}', "x.jsonl")
>>> rows[0].name, rows[0].target, rows[0].values, rows[0].first_ms == rows[0].last_ms
('promo', '1:all', (True, None, None, None), True)
>>> parse("scenario,store,open\\nshut,7,false\\n", "x.csv")[0][:3]
('shut', '7', None)
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from tidecast.stream.events import PLAN_FIELDS, InvalidEvent, parse_ts, validate_dict
from tidecast.stream.plans import PlanValues

COLUMNS = ("scenario", "store", "sku", "for", "until", *PLAN_FIELDS)
"""The fields a scenario row may have."""
_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message names the row."""


class ScenarioRow(NamedTuple):
    """One row: scenario ``name``; ``store`` and ``sku`` (None: every series of the store); the times of its
    first and last bucket (None: the whole horizon); plan ``values`` (None: keep the stored field)."""

    name: str
    store: str
    sku: str | None
    first_ms: int | None
    last_ms: int | None
    values: PlanValues
    line: int

    @property
    def target(self) -> str:
        """The series id, or the store for a store-wide row."""
        return self.store if self.sku is None else f"{self.store}:{self.sku}"


def parse(text: str, name: str) -> list[ScenarioRow]:
    """The rows of a scenario file (``name`` ending ``.csv``: CSV, else JSON lines or a JSON array)."""
    docs = _csv(text) if name.lower().endswith(".csv") else _json(text)
    rows = [_row(doc, line) for line, doc in docs]
    if not rows:
        raise ScenarioError("the file holds no scenario row")
    return rows


def _json(text: str) -> list[tuple[int, dict]]:
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            docs = orjson.loads(stripped)
            return [(n, doc) for n, doc in enumerate(docs, 1)]
        return [(n, orjson.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise ScenarioError(f"not JSON lines or a JSON array: {exc}") from None


def _csv(text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text))
    out = []
    for n, cells in enumerate(reader, 2):
        if None in cells:
            raise ScenarioError(f"row {n}: more cells than the header has columns")
        doc: dict = {}
        for key, cell in cells.items():
            cell = (cell or "").strip()
            if not cell:
                continue
            doc[key] = _cell(key, cell)
        out.append((n, doc))
    return out


def _cell(key: str, cell: str) -> object:
    """A CSV cell as the JSON value it stands for (anything unreadable stays text, to be refused by name)."""
    low = cell.lower()
    if key in ("promo", "open"):
        return True if low in _TRUE else False if low in _FALSE else cell
    if key == "price":
        try:
            return float(cell)
        except ValueError:
            return cell
    if key == "event" and low in ("null", "0"):
        return None
    return cell


def _time(doc: dict, name: str) -> int | None:
    """Field ``name`` as epoch ms (None when absent): ISO-8601 or epoch ms as in events, and a date or a time
    without offset read as UTC (the buckets' clock).

    >>> _time({"for": "2015-08-03"}, "for") == _time({"for": "2015-08-03T00:00:00+00:00"}, "for")
    True
    """
    if name not in doc:
        return None
    value = doc[name]
    if type(value) is str:
        try:
            if datetime.fromisoformat(value).tzinfo is None:
                value = datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()
        except ValueError:
            pass  # parse_ts says what is wrong
    return parse_ts(value, name)


def _row(doc: object, line: int) -> ScenarioRow:
    where = f"row {line}"
    if type(doc) is not dict:
        raise ScenarioError(f"{where}: not an object")
    unknown = sorted(set(doc) - set(COLUMNS))
    if unknown:
        raise ScenarioError(f"{where}: unknown field {unknown[0]!r}; a row has {', '.join(COLUMNS)}")
    name = doc.get("scenario")
    if type(name) is not str or not name.strip():
        raise ScenarioError(f"{where}: field 'scenario' must name the scenario")
    plan = {key: doc[key] for key in ("store", "sku", *PLAN_FIELDS) if key in doc}
    try:
        checked = validate_dict({"type": "plan", "event_id": name, "ts": 0, "for": 0, **plan})
        first = _time(doc, "for")
        last = _time(doc, "until") if "until" in doc else first
    except InvalidEvent as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if last is not None and first is None:
        raise ScenarioError(f"{where}: 'until' needs 'for' (the first bucket)")
    if first is not None and last is not None and last < first:
        raise ScenarioError(f"{where}: 'until' is before 'for'")
    values: PlanValues = checked.values  # type: ignore[union-attr]
    if all(value is None for value in values):
        raise ScenarioError(f"{where}: changes nothing (give promo, price, open or event)")
    store, _, sku = checked.target.partition(":")  # type: ignore[union-attr]
    return ScenarioRow(name.strip(), store, sku or None, first, last, values, line)
