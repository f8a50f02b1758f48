"""Croston's method for intermittent demand (Croston 1972), vectorised over series.

Example:
    >>> import numpy as np
    >>> b = Croston(horizon=2, alpha=0.1).fit(np.array([[0.0, 0.0, 3.0, 0.0, 2.0, 0.0]]))
    >>> b.point_forecast().round(6).tolist()                 # z = 2.9, p = 2.9
    [[1.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows, take


class Croston(StreamingBaseline):
    """Croston: smooth demand sizes ``z`` and inter-demand intervals ``p`` separately; forecast ``z / p``.

    With ``q`` = buckets since the previous demand (or since the series' first finite value), counting the
    current one, at each bucket with demand ``y > 0``::

        first demand:  z = y,                 p = q
        later:         z = z + alpha (y - z),  p = p + alpha (q - p)

    and the flat forecast for every step is ``z / p`` (0 before the first demand). Buckets with ``y <= 0``
    only advance ``q``; NaN buckets (before the start, or unknown) are skipped entirely.
    """

    name = "croston"

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        *,
        alpha: float = 0.1,
        **kw: object,
    ) -> None:
        super().__init__(horizon, quantiles, **kw)  # type: ignore[arg-type]
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = float(alpha)
        self._z = np.zeros(0)
        self._p = np.ones(0)
        self._q = np.zeros(0)
        self._init = np.zeros(0, dtype=bool)

    def _grow(self, n: int) -> None:
        self._z = pad_rows(self._z, n, 0.0)
        self._p = pad_rows(self._p, n, 1.0)
        self._q = pad_rows(self._q, n, 0.0)
        self._init = pad_rows(self._init, n, False)

    def _learn(self, y: np.ndarray) -> None:
        seen = np.isfinite(y)
        self._q += seen
        demand = seen & (np.where(seen, y, 0.0) > 0)
        first = demand & ~self._init
        later = demand & self._init
        a = self.alpha
        self._z = np.where(first, y, np.where(later, self._z + a * (y - self._z), self._z))
        self._p = np.where(first, self._q, np.where(later, self._p + a * (self._q - self._p), self._p))
        self._init |= demand
        self._q = np.where(demand, 0.0, self._q)

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        z, p, init = take(self._z, idx), take(self._p, idx), take(self._init, idx)
        f = np.where(init, z / p, 0.0)
        return np.repeat(f[:, None], self.horizon, axis=1)
