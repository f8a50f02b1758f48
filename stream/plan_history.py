"""The forecaster's plans next to its panel: what was planned for every bucket from ``t-L+1`` to ``t+H``.

Rows are the panel's series; columns the panel's L buckets and the H buckets after ``t``; channels
:data:`tidecast.stream.plans.CHANNELS`. At every close the H columns after ``t`` are read again from the
store (the plans known now, for the forecast); a column that has closed keeps what was read last, the plan
known at the last origin that forecast it, so the learner learns each label with a plan it could have known.
A restart reads every column from the store (plans stay there for ``TIDECAST_RETENTION`` buckets behind the
watermark, like the windows).

>>> from tidecast.stream.ingest import PartitionIngestor, Record
>>> from tidecast.stream.timebuckets import Buckets
>>> from tidecast.stream.window_store import MemoryWindowStore
>>> store, day = MemoryWindowStore(), 86_400_000
>>> ing = PartitionIngestor("plans", 0, Buckets(86_400), 0, 30)
>>> store.commit(ing.apply([Record(0, b'{"event_id":"p","type":"plan","ts":0,"for":%d,"store":"s","promo":true}'
...                                   % (2 * day))]))
True
>>> history = PlanHistory(length=2, horizon=2)
>>> hashes = history.advance(-3, store, ["s:A"])  # ts 0 is in bucket -4, "for" in -2 (bucket 0: 1970-01-05)
>>> history.window()[0, :, 0].tolist(), hashes[0] is not None
([0.0, 0.0, 1.0, 0.0], True)

The plan of a series' bucket is its own, else its store's, else none (:func:`resolve`):

>>> plans = {8: {"s1": PlanEntry(5, 0, (True, None, None, None)), "s1:B": PlanEntry(6, 1, (False, 2.5, None, ""))}}
>>> values, hashes = resolve(plans, ["s1:A", "s1:B", "s2:A"], first=8, n=1)
>>> values[:, 0].tolist()  # s1:A has its store's plan, s1:B its own, s2:A none
[[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
 [0.0, 1.0, 2.5, 1.0, 0.0, 0.0, 0.0, 1.0],
 [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
>>> hashes[0] is not None and hashes[0] != hashes[1], hashes[2]
(True, None)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from tidecast.stream.plans import CHANNELS, PlanEntry, PlanValues, encode, plan_hash
from tidecast.stream.window_store import WindowStore


class PlanHistory:
    """Planned values of the panel's series for buckets ``t-length+1 .. t+horizon`` (see the module docstring)."""

    def __init__(self, length: int, horizon: int) -> None:
        self.length, self.horizon = length, horizon
        self.t: int | None = None
        self._values = np.zeros((0, length + horizon, len(CHANNELS)), np.float32)
        self._rows = 0

    def window(self) -> np.ndarray:
        """float32 ``[S, length + horizon, 8]``: the columns of the panel's history, then the H after ``t``."""
        return self._values[: self._rows]

    def advance(self, t: int, store: WindowStore, series: Sequence[str]) -> list[str | None]:
        """Move to close ``t`` (the next one, else everything is read again) and read the plans of ``t+1 ..
        t+H``; returns each series' plan hash for those buckets (None: nothing planned)."""
        self._grow(len(series))
        view = self._values[: self._rows]
        if self.t is not None and t == self.t + 1:
            view[:, :-1] = view[:, 1:]
            view[:, -1] = 0.0
        elif self.t != t:
            first = t - self.length + 1
            view[:, : self.length] = resolve(store.read_plans(first, t), series, first, self.length)[0]
        self.t = t
        ahead, hashes = resolve(store.read_plans(t + 1, t + self.horizon), series, t + 1, self.horizon)
        view[:, self.length:] = ahead
        return hashes

    def _grow(self, rows: int) -> None:
        if rows > len(self._values):
            grown = np.zeros((max(rows, 2 * len(self._values), 1024), *self._values.shape[1:]), np.float32)
            grown[: self._rows] = self._values[: self._rows]
            self._values = grown
        self._rows = max(self._rows, rows)


def resolve(plans: Mapping[int, Mapping[str, PlanEntry]], series: Sequence[str], first: int,
            n: int) -> tuple[np.ndarray, list[str | None]]:
    """Plans of buckets ``first .. first+n-1`` for ``series``: float32 ``[S, n, 8]`` (:data:`CHANNELS`) and, per
    series, a short hash of the plan values used (:func:`plan_hash`; None when no bucket had a plan)."""
    out = np.zeros((len(series), n, len(CHANNELS)), np.float32)
    index = {name: i for i, name in enumerate(series)}
    by_store: dict[str, list[int]] = {}
    for i, name in enumerate(series):
        by_store.setdefault(name.partition(":")[0], []).append(i)
    used: dict[int, list[list]] = {}
    for step in range(n):
        targets = plans.get(first + step)
        if not targets:
            continue
        chosen: dict[int, PlanValues] = {}
        for target, entry in targets.items():
            if ":" not in target:
                for i in by_store.get(target, ()):
                    chosen.setdefault(i, entry.values)
        for target, entry in targets.items():
            i = index.get(target, -1) if ":" in target else -1
            if i >= 0:
                chosen[i] = entry.values  # the series' own plan before its store's
        if chosen:
            out[list(chosen), step] = [_encoded(values) for values in chosen.values()]
        for i, values in chosen.items():
            used.setdefault(i, []).append([step, *values])
    return out, [plan_hash(used[i]) if i in used else None for i in range(len(series))]


@functools.lru_cache(maxsize=4096)
def _encoded(values: PlanValues) -> list[float]:
    """:func:`~tidecast.stream.plans.encode`, remembered: plans repeat a few value combinations."""
    return encode(values)
