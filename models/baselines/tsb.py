"""TSB (Teunter, Syntetos & Babai 2011) for intermittent demand, vectorised over series.

Example:
    >>> import numpy as np
    >>> b = TSB(horizon=2, alpha=0.1, beta=0.1).fit(np.array([[0.0, 0.0, 3.0, 0.0, 2.0, 0.0]]))
    >>> b.point_forecast().round(6).tolist()                 # d = 0.333, z = 2.9
    [[0.9657, 0.9657]]
"""

from __future__ import annotations

import numpy as np

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows, take


class TSB(StreamingBaseline):
    """TSB: smooth the demand probability ``d`` every bucket and the demand size ``z`` at demands; forecast
    ``d * z``.

    At the first demand (``y > 0``) ``z = y`` and ``d = 1 / q``, with ``q`` the buckets since the series'
    first finite value, counting the current one. Afterwards, every finite bucket::

        demand (y > 0):  d = d + beta (1 - d),  z = z + alpha (y - z)
        no demand:       d = d + beta (0 - d),  z unchanged

    The flat forecast for every step is ``d * z`` (0 before the first demand). NaN buckets are skipped.
    Unlike Croston, the forecast decays while no demand occurs (obsolescence).
    """

    name = "tsb"

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        *,
        alpha: float = 0.1,
        beta: float = 0.1,
        **kw: object,
    ) -> None:
        super().__init__(horizon, quantiles, **kw)  # type: ignore[arg-type]
        if not (0 < alpha <= 1 and 0 < beta <= 1):
            raise ValueError("alpha and beta must be in (0, 1]")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._z = np.zeros(0)
        self._d = np.zeros(0)
        self._q = np.zeros(0)
        self._init = np.zeros(0, dtype=bool)

    def _grow(self, n: int) -> None:
        self._z = pad_rows(self._z, n, 0.0)
        self._d = pad_rows(self._d, n, 0.0)
        self._q = pad_rows(self._q, n, 0.0)
        self._init = pad_rows(self._init, n, False)

    def _learn(self, y: np.ndarray) -> None:
        seen = np.isfinite(y)
        self._q += seen & ~self._init
        demand = seen & (np.where(seen, y, 0.0) > 0)
        first = demand & ~self._init
        upd = seen & self._init
        a, b = self.alpha, self.beta
        hit = demand.astype(float)
        d_new = np.where(upd, self._d + b * (hit - self._d), self._d)
        z_new = np.where(upd & demand, self._z + a * (y - self._z), self._z)
        self._d = np.where(first, 1.0 / np.maximum(self._q, 1.0), d_new)
        self._z = np.where(first, y, z_new)
        self._init |= demand

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        z, d, init = take(self._z, idx), take(self._d, idx), take(self._init, idx)
        f = np.where(init, d * z, 0.0)
        return np.repeat(f[:, None], self.horizon, axis=1)
