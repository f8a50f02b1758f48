"""Standing values: the ``policy`` of a series or a store and the ``inventory`` of a series, kept until the next.

Unlike a plan, a standing event is for no bucket: it holds from when it is ingested until a later one of the
same kind and target replaces it. "Later" is the order of plans (:mod:`tidecast.stream.plans`): the greatest
``(issued_ms, offset, partition)``, so the outcome never depends on the order in which batches are applied, and
applying a batch twice changes nothing. Stores keep them per partition, as ``[issued, offset, *values]``.

>>> a = StandingEntry(5, 0, (None, None, 0.98)); b = StandingEntry(3, 9, (1, None, None))
>>> latest = {}; keep_latest(latest, "s1", a); keep_latest(latest, "s1", b); latest["s1"].values
(None, None, 0.98)
>>> from_json("policy", to_json(a), partition=2)
StandingEntry(issued_ms=5, offset=0, values=(None, None, 0.98), partition=2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from tidecast.stream.events import STANDING_KINDS
from tidecast.stream.plans import keep_latest

__all__ = ["StandingEntry", "from_json", "keep_latest", "merge_standing", "to_json"]


class StandingEntry(NamedTuple):
    """A stored standing value: its order key (``issued_ms``, ``offset``, ``partition``) and its values (the
    fields of its kind, :data:`~tidecast.stream.events.STANDING_KINDS`)."""

    issued_ms: int
    offset: int
    values: tuple
    partition: int = 0

    def order(self) -> tuple[int, int, int]:
        return self.issued_ms, self.offset, self.partition


def to_json(entry: StandingEntry) -> list:
    """``[issued_ms, offset, *values]``: how stores keep an entry."""
    return [entry.issued_ms, entry.offset, *entry.values]


def from_json(kind: str, doc: Sequence, partition: int = 0) -> StandingEntry:
    """Inverse of :func:`to_json` for an entry of ``kind`` (``partition``: where it was stored)."""
    issued, offset, *values = doc
    if len(values) != len(STANDING_KINDS[kind]):
        raise ValueError(f"a stored {kind} needs {2 + len(STANDING_KINDS[kind])} values, got {len(doc)}")
    return StandingEntry(int(issued), int(offset), tuple(values), partition)


def merge_standing(into: dict[str, StandingEntry], targets: dict[str, StandingEntry]) -> None:
    """Add one partition's entries to ``into``, the latest winning (a target written from two partitions).

    >>> into = {"s1": StandingEntry(1, 0, (1, 1, None))}
    >>> merge_standing(into, {"s1": StandingEntry(2, 0, (2, 1, None), 1)}); into["s1"].values
    (2, 1, None)
    """
    for target, entry in targets.items():
        keep_latest(into, target, entry)
