"""Moving-average baseline: every step forecasts the mean of the series' last ``window`` observed values.

Example:
    >>> import numpy as np
    >>> y = np.array([[1.0, 2.0, 3.0, 7.0], [np.nan, np.nan, 4.0, 2.0]])
    >>> b = MovingAverage(horizon=2, window=3).fit(y)
    >>> b.point_forecast().tolist()                          # (2+3+7)/3; (4+2)/2 while fewer than 3 values
    [[4.0, 4.0], [3.0, 3.0]]
"""

from __future__ import annotations

import numpy as np

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows


class MovingAverage(StreamingBaseline):
    """``y_hat = mean(y[t-w .. t-1])`` over the finite values among the last w buckets (w = ``window``, 28).

    Fewer than w values so far: the mean of those there are; none: 0. State: a ring of w buckets plus a
    running sum and count, O(S) per bucket.
    """

    name = "moving_average"

    def __init__(
        self, horizon: int, quantiles: tuple[float, ...] = DEFAULT_QUANTILES, *, window: int = 28, **kw: object
    ) -> None:
        super().__init__(horizon, quantiles, **kw)  # type: ignore[arg-type]
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self._ring = np.full((self.window, 0), np.nan)
        self._sum = np.zeros(0)
        self._count = np.zeros(0, dtype=np.int64)

    def _grow(self, n: int) -> None:
        self._ring = pad_rows(self._ring.T, n, np.nan).T.copy()
        self._sum = pad_rows(self._sum, n, 0.0)
        self._count = pad_rows(self._count, n, 0)

    def _learn(self, y: np.ndarray) -> None:
        slot = self.t % self.window
        old = self._ring[slot]
        old_ok, new_ok = np.isfinite(old), np.isfinite(y)
        self._sum += np.where(new_ok, y, 0.0) - np.where(old_ok, old, 0.0)
        self._count += new_ok.astype(np.int64) - old_ok.astype(np.int64)
        self._ring[slot] = y
        if self.t % (16 * self.window) == 0:  # re-sum now and then against floating-point drift
            ring = np.where(np.isfinite(self._ring), self._ring, 0.0)
            self._sum = ring.sum(axis=0)

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        s = self._sum if idx is None else self._sum[idx]
        c = self._count if idx is None else self._count[idx]
        mean = np.where(c > 0, s / np.maximum(c, 1), 0.0)
        return np.repeat(mean[:, None], self.horizon, axis=1)
