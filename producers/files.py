"""Read a history file (CSV or JSON lines, optionally gzipped) as event dicts for replay and backtests.

Columns map to event fields with a spec such as ``"ts=InvoiceDate,sku=StockCode,qty=Quantity"``. Naive
timestamps are read in the file's time zone and emitted as ISO-8601 with offset. Rows are never dropped: a
value that cannot be converted stays as it is, so that the event validator rejects the row with a reason
and it goes to the dead-letter queue.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "s.csv").write_text("day,item,units,total\\n2011-06-01 09:30,A1,2,4\\n2011-12-01,B2,x,1\\n")
>>> columns = parse_columns("ts=day,sku=item,qty=units,revenue=total")
>>> for event in read_events(folder / "s.csv", columns, tz="Europe/London"):
...     print(event)
{'event_id': 's.csv:1', 'type': 'sale', 'ts': '2011-06-01T09:30:00+01:00', 'sku': 'A1', 'qty': 2, 'price': 2}
{'event_id': 's.csv:2', 'type': 'sale', 'ts': '2011-12-01T00:00:00+00:00', 'sku': 'B2', 'qty': 'x'}
>>> count_rows(folder / "s.csv")
2

Rows whose ``type`` is ``policy`` or ``inventory`` keep their fields (:data:`STANDING_FIELDS`):

>>> _ = (folder / "stock.csv").write_text("type,ts,store,sku,on_hand,on_order\\ninventory,2011-06-01,s1,A1,12,\\n")
>>> row = next(read_events(folder / "stock.csv", tz="UTC"))
>>> row["type"], row["sku"], row["on_hand"], "on_order" in row   # an empty cell: absent (0 on order)
('inventory', 'A1', 12, False)
"""

from __future__ import annotations

import codecs
import csv
import gzip
import itertools
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from tidecast.producers import dates

STANDING_FIELDS = ("lead_time", "review", "service_level", "on_hand", "on_order")
"""The fields of ``policy`` and ``inventory`` rows (``type`` column), so a file of them can be sent too."""
FIELDS = ("event_id", "type", "ts", "sku", "store", "qty", "price", "revenue", "promo", "action", "open", "event",
          *STANDING_FIELDS)
"""Event fields a column can map to (``revenue`` only serves to derive ``price``; ``open`` and ``event`` are
carried in the record as extra fields, which the validator ignores)."""
OPTIONAL = frozenset({"store", "price", "revenue", "promo", "open", "event", *STANDING_FIELDS})
"""Fields for which an empty cell (or JSON null) means absent; an empty required field stays ``""``."""
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_SUFFIXES = (".csv",)
_NUMERIC = frozenset({"qty", "price", "revenue", *STANDING_FIELDS})
_TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y"})
"""Flag cells read as true (case-insensitive, trimmed), as spreadsheets and pandas (``1.0``: a float column) write."""
_FALSE = frozenset({"0", "0.0", "false", "f", "no", "n"})
"""Flag cells read as false; any other cell stays as it is, for the validator to reject."""
_NO_EVENT = frozenset({"", "0", "0.0"})
"""``event`` cells that mean no calendar event (Rossmann's state_holiday writes ``0`` for none)."""
DEFAULT_SKU = "all"
"""The sku of every row when ``--columns`` maps no ``sku``: one series per store (``STORE:all``)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_FROM = 1e8
"""Epoch seconds from this on (1973-03-03) are times; smaller numbers are read as none (see :func:`_epoch`)."""
_SECONDS_BELOW = 1e11  # epoch numbers below this are seconds (before year 5138), above it milliseconds
_MISSING = object()
_DECIMAL_COMMA = re.compile(r"[-+]?(\d+|\d{1,3}(\.\d{3})+),\d+")
DELIMITERS = (",", ";", "\t", "|")
"""The CSV delimiters told apart by :func:`csv_delimiter`, the comma first."""
MISSING_MARKERS = frozenset({"na", "n/a", "nan", "null", "none", "-", "--", "?"})
"""Cell values (case-insensitive) that mean "not known" in an optional numeric or flag field, as an empty
cell does: an export's ``NA`` price leaves the sale without a price instead of refusing it."""
_MARKABLE = OPTIONAL - {"store", "event"}


def _marks_missing(raw: object) -> bool:
    """
    >>> _marks_missing(" N/A "), _marks_missing("NULL"), _marks_missing("0"), _marks_missing(1.5)
    (True, True, False, False)
    """
    return type(raw) is str and raw.strip().lower() in MISSING_MARKERS


def parse_columns(spec: str | None) -> dict[str, str]:
    """``"FIELD=COLUMN,..."`` to ``{field: column}``; ``None`` gives the identity over :data:`FIELDS`.

    >>> parse_columns("ts=InvoiceDate, sku=StockCode")
    {'ts': 'InvoiceDate', 'sku': 'StockCode'}
    """
    if spec is None:
        return {name: name for name in FIELDS}
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        field, sep, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ValueError(f"bad column mapping {part.strip()!r} in {spec!r}: expected FIELD=COLUMN,... "
                             "such as 'ts=InvoiceDate,sku=StockCode,qty=Quantity'")
        if field not in FIELDS:
            known = ", ".join(FIELDS)
            raise ValueError(f"unknown event field {field!r} in column mapping {spec!r}; known: {known}")
        if field in mapping:
            raise ValueError(f"event field {field!r} is mapped twice in {spec!r}")
        mapping[field] = column
    return mapping


def read_events(
    path: Path, columns: dict[str, str] | None = None, tz: str = "UTC", date_format: str | None = None
) -> Iterator[dict | bytes]:
    """Stream the rows of ``path`` (``.csv``, ``.jsonl``, ``.json`` or ``.ndjson``, maybe ``.gz``) as events.

    ``columns`` maps event fields to the file's columns (see :func:`parse_columns`); ``None`` maps every
    field to the column of the same name where there is one. A mapping ``FIELD=FIELD`` whose column a CSV
    header lacks is skipped; any other missing CSV column is a ``ValueError``. Without an ``event_id``
    value, the id is ``"{file name}:{row}"`` (rows count from 1, the CSV header excluded); without a
    ``type``, the row is a sale. Naive times are local times in ``tz`` (an ambiguous one takes the earlier,
    summer-time reading); JSON numbers and numeric strings are epoch seconds, or milliseconds from 1e11.
    ``price`` is ``revenue / qty`` when only revenue is given. Without a ``sku`` in ``columns`` (a panel of
    stores), every row's sku is :data:`DEFAULT_SKU`. ``open`` is a flag like ``promo``; ``event`` a name, absent
    for ``0`` or an empty cell. ``date_format`` (strptime) reads the times that are not ISO-8601; without it,
    numeric dates such as ``11/1/2000`` get the day/month order of the whole column
    (:func:`detect_date_format`, one extra pass over the file when the first time is such a date). An unknown
    format or time zone fails at once; a missing CSV column or dates of no one order on the first ``next()``.
    """
    path = Path(path)
    kind = _kind(path)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None
    mapping = parse_columns(None) if columns is None else dict(columns)
    return _stream(path, kind, mapping, zone, date_format)


def _stream(
    path: Path, kind: str, mapping: dict[str, str], zone: tzinfo, date_format: str | None
) -> Iterator[dict | bytes]:
    if date_format is None:
        date_format = detect_date_format(path, mapping)
    with _open(path) as handle:
        rows = _csv_rows(handle, path, mapping) if kind == "csv" else _json_rows(handle, path, mapping)
        convert = _Converter(zone, path.name, None if date_format is None else dates.parser(date_format),
                             constant_sku="sku" not in mapping)
        for row, values in rows:
            yield convert(row, values)


def detect_date_format(path: Path, columns: dict[str, str] | None = None) -> str | None:
    """The strptime format of the file's numeric dates (``11/1/2000``: day/month order from the whole column),
    or None when its first time is ISO-8601, a number, or there is none.

    Reads the rows until the first readable time; only when that is a numeric date, all of them. Raises
    :class:`~tidecast.producers.dates.AmbiguousDates` (a ``ValueError``) when no value tells day from month.
    """
    path = Path(path)
    kind = _kind(path)
    mapping = parse_columns(None) if columns is None else dict(columns)
    if "ts" not in mapping:
        return None
    only_ts = {"ts": mapping["ts"]}
    order = dates.DateOrder(mapping["ts"])
    with _open(path) as handle:
        rows = _csv_rows(handle, path, only_ts) if kind == "csv" else _json_rows(handle, path, only_ts)
        for _, values in rows:
            raw = None if isinstance(values, _BadLine) else values.get("ts")
            if order.seen == 0 and type(raw) in (int, float):
                return None  # epoch numbers
            if type(raw) is not str or order.add(raw):
                continue
            if order.seen == 0 and _is_time(raw.strip()):
                return None  # ISO-8601 or an epoch number: no format needed
    return order.format()


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return type(_number(text)) is not str
    return True


def count_rows(path: Path) -> int | None:
    """Number of data rows (lines, less a CSV header), cheaply; ``None`` if ``path`` is no readable file."""
    path = Path(path)
    try:
        kind = _kind(path)
    except ValueError:
        return None
    if not path.is_file():
        return None
    lines, last = 0, b"\n"
    with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - 1, 0) if kind == "csv" else lines


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in CSV_SUFFIXES:
        return "csv"
    if suffixes and suffixes[-1] in JSON_SUFFIXES:
        return "json"
    raise ValueError(f"cannot tell the format of {path.name!r}: expected .csv, .jsonl, .json or .ndjson, "
                     "maybe .gz")


def _open(path: Path) -> IO[str]:
    encoding = file_encoding(path)
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding=encoding, errors="replace", newline="")
    return path.open(encoding=encoding, errors="replace", newline="")


def file_encoding(path: Path, sample: int = 1 << 20) -> str:
    r"""``utf-8-sig`` when the file's first ``sample`` bytes (decompressed) are UTF-8, else ``cp1252``: the
    encoding of Windows spreadsheet exports in Western Europe and the Americas (Latin-1 in effect), where
    "Café" read as UTF-8 would become "Caf\ufffd" and merge with every other name that differs only there.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "u.csv").write_bytes("sku\nCafé\n".encode()) and file_encoding(folder / "u.csv")
    'utf-8-sig'
    >>> (folder / "w.csv").write_bytes("sku\nCafé\n".encode("cp1252")) and file_encoding(folder / "w.csv")
    'cp1252'
    """
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(sample)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character cut at the end is fine
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def csv_delimiter(header_line: str) -> str:
    """The delimiter of a CSV file, from its header line: the most frequent of ``, ; TAB |`` (a comma on a
    tie or when there is none), so that European exports (``;``) and tab- or pipe-separated files read too.

    >>> csv_delimiter("date;store;sales"), csv_delimiter("a,b"), csv_delimiter("a|b|c"), csv_delimiter("one")
    (';', ',', '|', ',')
    """
    counts = {sep: header_line.count(sep) for sep in DELIMITERS}
    best = max(DELIMITERS, key=lambda sep: counts[sep])  # first wins a tie: the comma
    return best if counts[best] > 0 else ","


def _csv_rows(handle: IO[str], path: Path, mapping: dict[str, str]) -> Iterator[tuple[int, dict]]:
    first = handle.readline()
    delimiter = csv_delimiter(first)
    reader = csv.reader(itertools.chain([first], handle), delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
    if not header:
        return
    where: dict[str, int] = {}
    for i, name in enumerate(header):
        where.setdefault(name, i)
    plan = []
    for field, column in mapping.items():
        if column in where:
            plan.append((field, where[column]))
        elif column != field:
            have = ", ".join(header)
            raise ValueError(f"{path.name} has no column {column!r} (for {field!r}); its columns: {have}")
    numeric = {field for field, _ in plan if field in _NUMERIC} if delimiter != "," else set()
    for row, cells in enumerate(reader, start=1):
        width = len(cells)
        values = {field: cells[i] if i < width else None for field, i in plan}
        for field in numeric:
            values[field] = decimal_point(values[field])
        yield row, values


def decimal_point(cell: str | None) -> str | None:
    """A number written with a decimal comma, as files separated by ``;``, tab or ``|`` write them
    (``1,5`` or ``1.234,50``), with a decimal point; any other cell unchanged (``1.5``, ``1.234``, ``NA``).

    >>> [decimal_point(cell) for cell in ("1,5", "-1.234,50", "1.5", "1.234", "a,b", None)]
    ['1.5', '-1234.50', '1.5', '1.234', 'a,b', None]
    """
    if cell is None or "," not in cell:
        return cell
    text = cell.strip()
    if _DECIMAL_COMMA.fullmatch(text):
        return text.replace(".", "").replace(",", ".")
    return cell


def _json_rows(handle: IO[str], path: Path, mapping: dict[str, str]) -> Iterator[tuple[int, dict | _BadLine]]:
    for row, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        if row == 1 and text.startswith("["):
            raise ValueError(f"{path.name} holds a JSON array; expected JSON lines (one object per line)")
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield row, _BadLine(text, f"not valid JSON: {exc}")
            continue
        if type(doc) is not dict:
            yield row, _BadLine(text, "not a JSON object")
            continue
        yield row, {field: doc[column] for field, column in mapping.items() if column in doc}


class _BadLine(NamedTuple):
    """A JSON line that is no object: it is passed on as its raw bytes, for the validator to reject."""

    text: str
    error: str


class _Converter:
    """Turns one row's raw values into an event dict, keeping what it cannot convert."""

    def __init__(
        self,
        zone: tzinfo,
        name: str,
        parse_date: Callable[[str], datetime | None] | None = None,
        constant_sku: bool = False,
    ) -> None:
        self.zone, self.name, self.parse_date, self.constant_sku = zone, name, parse_date, constant_sku
        self.cache: dict[object, object] = {}

    def __call__(self, row: int, values: dict | _BadLine) -> dict | bytes:
        if isinstance(values, _BadLine):
            return values.text.encode()  # sent as it is, so the validator gives the real reason
        event: dict = {}
        for field, raw in values.items():
            if field in OPTIONAL and (raw is None or raw == "" or (field in _MARKABLE and _marks_missing(raw))):
                continue
            if field == "ts":
                raw = self.ts(raw)
            elif field in _NUMERIC:
                raw = _number(raw)
            elif field in ("promo", "open"):
                raw = _flag(raw)
            elif field == "event":
                raw = _event_name(raw)
                if raw is None:
                    continue
            elif field in ("type", "action") and type(raw) is str:
                raw = raw.strip().lower()
            elif type(raw) is int:  # a numeric id or sku in JSON
                raw = str(raw)
            elif field in ("sku", "store") and type(raw) is str:
                raw = raw.strip()  # "A1  " from a fixed-width (CHAR) export is the sku "A1"
            event[field] = raw
        revenue = event.pop("revenue", _MISSING)
        if revenue is not _MISSING and "price" not in event:
            qty = event.get("qty")
            if type(revenue) is str:
                event["price"] = revenue  # unparsable: let the validator reject the row
            elif type(qty) in (int, float) and qty != 0 and type(revenue) in (int, float):
                event["price"] = _number(round(revenue / qty, 6))
        if self.constant_sku:
            event["sku"] = DEFAULT_SKU
        event_id = event.pop("event_id", _MISSING)
        kind = event.pop("type", "sale")
        return {"event_id": f"{self.name}:{row}" if event_id is _MISSING else event_id, "type": kind, **event}

    def ts(self, raw: object) -> object:
        if type(raw) not in (str, int, float):
            return raw
        hit = self.cache.get(raw, _MISSING)
        if hit is _MISSING:
            if len(self.cache) > 4096:
                self.cache.clear()
            hit = self.cache[raw] = _timestamp(raw, self.zone, self.parse_date)
        return hit


def _timestamp(raw: Any, zone: tzinfo, parse_date: Callable[[str], datetime | None] | None = None) -> object:
    """ISO-8601 with offset, or ``raw`` unchanged when it is no time; ``parse_date`` (a date format) first."""
    if type(raw) is str:
        moment = None if parse_date is None else parse_date(raw)
        try:
            if moment is None:
                moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            number = _number(raw)
            return raw if type(number) is str else _epoch(number, raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.isoformat()
    return _epoch(raw, raw)


def _epoch(number: Any, raw: object) -> object:
    """An epoch time in seconds, or milliseconds from 1e11; a number under :data:`EPOCH_FROM` is no time (an
    Excel serial day ``45292``, a year-week ``202301``) and is kept, for the validator to refuse with its value.

    >>> _epoch(1767607200, 1767607200), _epoch(45292, "45292"), _epoch(202301, 202301)
    ('2026-01-05T10:00:00+00:00', '45292', '202301')
    """
    if not math.isfinite(number):
        return raw
    if abs(number) < EPOCH_FROM:
        return raw if type(raw) is str else str(raw)
    try:
        if abs(number) < _SECONDS_BELOW:
            return (_EPOCH + timedelta(seconds=number)).isoformat()
        return (_EPOCH + timedelta(milliseconds=number)).isoformat()
    except OverflowError:
        return raw


_INT64 = 2**63  # JSON encoders (orjson) take integers within 64 bits; larger ones stay floats


def _number(raw: Any) -> Any:
    """int when integral and within 64 bits, else float; anything else (or not finite) unchanged."""
    kind = type(raw)
    if kind is int:
        return raw if -_INT64 <= raw < _INT64 else float(raw)
    if kind is float:
        return int(raw) if raw.is_integer() and abs(raw) < _INT64 else raw
    if kind is not str:
        return raw
    text = raw.strip()
    try:
        return _number(int(text))
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return raw
    if not math.isfinite(value):
        return raw
    return _number(value)


def _event_name(raw: object) -> str | None:
    """``event``: the name of a calendar event, None for none (``0``, an empty cell).

    >>> [_event_name(v) for v in ("a", " 0 ", 0, "0.0", "Christmas", 2)]
    ['a', None, None, None, 'Christmas', '2']
    """
    if raw is None or raw is False:
        return None
    text = str(_number(raw)) if type(raw) in (int, float) else str(raw).strip()
    return None if text in _NO_EVENT else text


def _flag(raw: object) -> object:
    """``promo``, ``open``: a bool from :data:`_TRUE` / :data:`_FALSE` text or a JSON 0/1 (int or float); else as is.

    >>> [_flag(v) for v in (" 1.0", "FALSE", "y", "T", 0.0, 1, "2", 0.5, "maybe")]
    [True, False, True, True, False, True, '2', 0.5, 'maybe']
    """
    if type(raw) is bool:
        return raw
    if type(raw) in (int, float) and raw in (0, 1):
        return bool(raw)
    if type(raw) is str:
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return raw
