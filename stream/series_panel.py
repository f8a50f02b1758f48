"""The forecaster's dense view of every series: the last L closed buckets as one float32 array.

Rows are series (in order of first appearance), columns the buckets ``t-L+1 .. t``, channels the seven
window metrics (:data:`tidecast.stream.windows.METRICS`). The panel is rebuilt from the window store on a
restart, so a checkpoint holds only the registry (names, first and last activity), not the history.

>>> panel = SeriesPanel(length=3)
>>> panel.push(10, {"all:A": [2, 1, 5.0, 0, 9, 1, 0]})
>>> panel.push(11, {"all:B": [1, 1, 2.0, 0, 0, 0, 0]})
>>> panel.series, panel.first_seen.tolist(), panel.history[:, :, 0].tolist()
(['all:A', 'all:B'], [10, 11], [[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
"""

from __future__ import annotations

import numpy as np

from tidecast.stream.events import split_many
from tidecast.stream.windows import METRICS

CHANNELS = len(METRICS)


class SeriesPanel:
    """Series registry plus a sliding [S, L, 7] history ending at the last pushed bucket ``t``."""

    def __init__(self, length: int) -> None:
        if length < 1:
            raise ValueError("panel length must be positive")
        self.length = length
        self.series: list[str] = []
        self.index: dict[str, int] = {}
        self.t: int | None = None
        self._history = np.zeros((0, length, CHANNELS), np.float32)
        self._first = np.zeros(0, np.int64)
        self._last = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.series)

    @property
    def history(self) -> np.ndarray:
        return self._history[: len(self.series)]

    @property
    def first_seen(self) -> np.ndarray:
        return self._first[: len(self.series)]

    @property
    def last_active(self) -> np.ndarray:
        return self._last[: len(self.series)]

    def push(self, t: int, rows: dict[str, list[float]]) -> None:
        """Append closed bucket ``t`` (the next one after the last pushed) with its rows per series."""
        if self.t is not None and t != self.t + 1:
            raise ValueError(f"buckets must be pushed in order: expected {self.t + 1}, got {t}")
        self._register(sorted(name for name in rows if name not in self.index), t)  # store order varies
        n = len(self.series)
        view = self._history[:n]
        view[:, :-1] = view[:, 1:]
        view[:, -1] = 0.0
        if rows:
            idx = np.fromiter((self.index[name] for name in rows), np.int64, len(rows))
            view[idx, -1] = np.asarray(list(rows.values()), np.float32)
            self._last[idx] = t
        self.t = t

    def fill(self, t: int, rows: dict[str, list[float]]) -> None:
        """Set column ``t`` (already inside the window) without sliding: used to rebuild after a restart."""
        if self.t is None or not self.t - self.length < t <= self.t:
            raise ValueError(f"bucket {t} is outside the panel window ending at {self.t}")
        column = self.length - 1 - (self.t - t)
        for name, row in rows.items():
            i = self.index.get(name)
            if i is not None:
                self._history[i, column] = row

    def active_since(self, bucket: int) -> np.ndarray:
        """Indices of series with any activity at or after ``bucket``."""
        return np.flatnonzero(self.last_active >= bucket)

    def stores_and_skus(self, rows: np.ndarray | None = None) -> tuple[list[str], list[str]]:
        return split_many(self.series if rows is None else [self.series[i] for i in rows])

    def registry(self) -> dict:
        """What a checkpoint keeps: names, first and last activity, the last bucket."""
        return {
            "series": list(self.series),
            "first_seen": self.first_seen.tolist(),
            "last_active": self.last_active.tolist(),
            "t": -1 if self.t is None else self.t,
        }

    @classmethod
    def from_registry(cls, length: int, registry: dict) -> SeriesPanel:
        """An empty-history panel with the saved registry (fill the columns from the store afterwards)."""
        panel = cls(length)
        names = registry["series"]
        panel._register(names, 0)
        panel._first[: len(names)] = registry["first_seen"]
        panel._last[: len(names)] = registry["last_active"]
        panel.t = None if registry["t"] < 0 else registry["t"]
        return panel

    def _register(self, names: list[str], t: int) -> None:
        if not names:
            return
        start = len(self.series)
        need = start + len(names)
        if need > len(self._history):
            capacity = max(need, 2 * len(self._history), 1024)
            self._history = _grow(self._history, capacity)
            self._first = _grow(self._first, capacity)
            self._last = _grow(self._last, capacity)
        for offset, name in enumerate(names):
            self.index[name] = start + offset
        self.series.extend(names)
        self._first[start:need] = t
        self._last[start:need] = t


def _grow(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown
