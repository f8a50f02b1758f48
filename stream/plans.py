"""Plans of future buckets: which one wins, and how the forecaster turns them into model inputs.

A :class:`~tidecast.stream.events.Plan` says what is known about one future bucket of a series (``store:sku``)
or of a whole store (``store``). Per (target, bucket) the *last* plan wins, last meaning the greatest
``(issued_ms, offset, partition)``: the plan's own issue time first, then its Kafka offset (plans of one target
share a partition when producers key them by target), then the partition number, so the outcome never depends
on the order in which batches or partitions are applied. A later plan replaces the whole earlier one: fields it
leaves out become unknown again.

For a series, the plan of a bucket is its own plan, else its store's, else none (everything unknown);
:func:`~tidecast.stream.plan_history.resolve` encodes them with :func:`encode` as :data:`CHANNELS`, a
known-mask next to every value, so the model tells "no plan" (0, 0) from "no promotion" (0, 1):

>>> encode((False, None, None, None)), encode((None, None, None, None))
([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import orjson

from tidecast.stream.events import NO_EVENT, PLAN_FIELDS

PlanValues = tuple[bool | None, float | None, bool | None, str | None]
"""promo, price, open, event (:data:`~tidecast.stream.events.PLAN_FIELDS`); None = unknown, event ``""`` = none."""

CHANNELS: tuple[str, ...] = ("promo", "promo_known", "price", "price_known", "open", "open_known", "event",
                             "event_known")
"""The model's plan channels per target bucket: each field's value, then whether it is known."""
PROMO, PROMO_KNOWN, PRICE, PRICE_KNOWN, OPEN, OPEN_KNOWN, EVENT, EVENT_KNOWN = range(len(CHANNELS))
HASH_CHARS = 12
"""Length of the plan hash a forecast message carries (hex)."""


class PlanEntry(NamedTuple):
    """A stored plan: its order key (``issued_ms``, ``offset``, ``partition``) and its values."""

    issued_ms: int
    offset: int
    values: PlanValues
    partition: int = 0

    def order(self) -> tuple[int, int, int]:
        return self.issued_ms, self.offset, self.partition


class Ordered(Protocol):
    """An entry that knows its place in "last write wins" (a plan, a standing value)."""

    def order(self) -> tuple[int, int, int]: ...


def keep_latest(into: dict, key: object, entry: Ordered) -> None:
    """``into[key] = entry`` unless the entry there is later (last write wins, see the module docstring).

    >>> d = {}; keep_latest(d, "k", PlanEntry(2, 0, (True, None, None, None)))
    >>> keep_latest(d, "k", PlanEntry(1, 9, (False, None, None, None))); d["k"].values[0]
    True
    """
    old = into.get(key)
    if old is None or entry.order() >= old.order():
        into[key] = entry


def encode(values: PlanValues) -> list[float]:
    """One bucket's plan as :data:`CHANNELS` (a named event is 1.0, "no event" 0.0, both known).

    >>> encode((None, 9.5, False, "Easter"))
    [0.0, 0.0, 9.5, 1.0, 0.0, 1.0, 1.0, 1.0]
    """
    promo, price, is_open, event = values
    return [float(bool(promo)), float(promo is not None), float(price or 0.0), float(price is not None),
            float(bool(is_open)), float(is_open is not None), float(event not in (None, NO_EVENT)),
            float(event is not None)]


def plan_hash(rows: list[list]) -> str:
    """A short hex digest of ``[step, promo, price, open, event]`` rows: which plan a forecast assumed.

    >>> plan_hash([[0, True, None, None, None]]) == plan_hash([[0, True, None, None, None]])
    True
    """
    return hashlib.blake2b(orjson.dumps(rows), digest_size=HASH_CHARS // 2).hexdigest()


def to_json(entry: PlanEntry) -> list:
    """``[issued_ms, offset, promo, price, open, event]``: how stores keep an entry."""
    return [entry.issued_ms, entry.offset, *entry.values]


def from_json(doc: Sequence, partition: int = 0) -> PlanEntry:
    """Inverse of :func:`to_json` (``partition``: where it was stored).

    >>> from_json(to_json(PlanEntry(1, 2, (True, None, None, ""))), 3)
    PlanEntry(issued_ms=1, offset=2, values=(True, None, None, ''), partition=3)
    """
    issued, offset, *values = doc
    if len(values) != len(PLAN_FIELDS):
        raise ValueError(f"a stored plan needs {2 + len(PLAN_FIELDS)} values, got {len(doc)}")
    return PlanEntry(int(issued), int(offset), tuple(values), partition)
