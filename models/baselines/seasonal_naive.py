"""Seasonal naive baseline: each step forecasts the value of the same phase one season earlier.

Example:
    >>> import numpy as np
    >>> b = SeasonalNaive(horizon=4, season=3).fit(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    >>> b.point_forecast().tolist()                          # last season is 3, 4, 5
    [[3.0, 4.0, 5.0, 3.0]]
"""

from __future__ import annotations

import numpy as np

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows


class SeasonalNaive(StreamingBaseline):
    """``y_hat[t+h-1] = y[t+h-1 - m*ceil(h/m)]`` with season m (24 hourly, 7 daily, 52 weekly buckets).

    Where that value is unknown (less than one season of history, or NaN there) the series' last finite
    value is used instead (naive), and 0 before any value. State: a ring of the last m buckets, O(m S).
    """

    name = "seasonal_naive"

    def __init__(
        self, horizon: int, quantiles: tuple[float, ...] = DEFAULT_QUANTILES, *, season: int = 7, **kw: object
    ) -> None:
        super().__init__(horizon, quantiles, **kw)  # type: ignore[arg-type]
        if season < 1:
            raise ValueError("season must be >= 1")
        self.season = int(season)
        self._ring = np.full((self.season, 0), np.nan)  # [phase slot = bucket % m, S]
        self._last = np.full(0, np.nan)

    def _grow(self, n: int) -> None:
        self._ring = pad_rows(self._ring.T, n, np.nan).T.copy()
        self._last = pad_rows(self._last, n, np.nan)

    def _learn(self, y: np.ndarray) -> None:
        self._ring[self.t % self.season] = y
        self._last = np.where(np.isfinite(y), y, self._last)

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        # after _learn the counter self.t is the next origin; target t+h-1 has the phase of bucket t+h-1-m
        slots = (self.t + np.arange(self.horizon)) % self.season
        ring = self._ring if idx is None else self._ring[:, idx]
        last = self._last if idx is None else self._last[idx]
        out = ring[slots].T  # [n, H]
        return np.where(np.isfinite(out), out, last[:, None])
