"""Naive baseline: every step forecasts the series' last observed value.

Example:
    >>> import numpy as np
    >>> b = Naive(horizon=3).fit(np.array([[4.0, 0.0, 2.0], [np.nan, np.nan, np.nan]]))
    >>> b.point_forecast().tolist()                          # a series not started yet forecasts 0
    [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import numpy as np

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows


class Naive(StreamingBaseline):
    """``y_hat[t+h-1] = y[t-1]`` (the last finite value) for every step h; 0 before the first value.

    Keyword arguments are those of :class:`StreamingBaseline`.
    """

    name = "naive"

    def __init__(self, horizon: int, quantiles: tuple[float, ...] = DEFAULT_QUANTILES, **kw: object) -> None:
        super().__init__(horizon, quantiles, **kw)  # type: ignore[arg-type]
        self._last = np.full(0, np.nan)

    def _grow(self, n: int) -> None:
        self._last = pad_rows(self._last, n, np.nan)

    def _learn(self, y: np.ndarray) -> None:
        self._last = np.where(np.isfinite(y), y, self._last)

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        last = self._last if idx is None else self._last[idx]
        return np.repeat(last[:, None], self.horizon, axis=1)
