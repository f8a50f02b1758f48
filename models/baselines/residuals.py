"""Quantiles from a baseline's own past errors: empirical quantiles of forecast errors per horizon step.

Errors ``e = actual - point forecast`` of a deterministic sample of at most ``max_series`` series are
divided by each series' scale at the origin (see ``SCALES``), pooled across series over the last ``window``
buckets, and their empirical quantiles per step give offsets ``R[h, q]``. The baseline then forecasts
``clip(point + scale_i * R[h, q], 0)``, sorted along q. O(sample) memory and work per bucket.

Example:
    >>> import numpy as np
    >>> rq = ResidualQuantiles(horizon=1, quantiles=(0.1, 0.5, 0.9), min_count=1)
    >>> idx = rq.sample(3)                                   # all three series are sampled
    >>> rq.remember(0, np.array([[1.0], [1.0], [1.0]]), np.ones(3))    # point forecasts for bucket 0
    >>> rq.score(0, np.array([0.0, 1.0, 2.0]))                # actuals: errors -1, 0, 1
    >>> rq.offsets().tolist()
    [[-0.8, 0.0, 0.8]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Scale = Literal["none", "level", "sqrt"]
SCALES: dict[str, str] = {
    "none": "errors pooled in units",
    "level": "errors divided by the series' level (its smoothed mean)",
    "sqrt": "errors divided by the square root of the level (Poisson-like; the default)",
}


class ResidualQuantiles:
    """Pooled empirical error quantiles per horizon step (see the module docstring).

    Args:
        horizon: H.
        quantiles: Q quantile levels in (0, 1).
        window: buckets of errors kept per step.
        max_series: at most this many series are tracked (every ``stride``-th series; the stride doubles as
            the panel grows, keeping a subset of the tracked series, so nothing is reset).
        min_count: a step with fewer finite errors borrows the previous step's offsets (zeros for step 1).
    """

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...],
        window: int = 56,
        max_series: int = 512,
        min_count: int = 30,
    ) -> None:
        self.horizon = int(horizon)
        self.quantiles = np.asarray(quantiles, dtype=float)
        self.window = int(window)
        self.max_series = int(max_series)
        self.min_count = int(min_count)
        self._n = 0  # panel size the sample was drawn from
        self._stride = 1
        self._idx = np.zeros(0, dtype=np.int64)
        self._pend = np.full((self.horizon, 0, self.horizon), np.nan)  # [origin slot, sample, step]
        self._pend_scale = np.full((self.horizon, 0), np.nan)  # [origin slot, sample]
        # [bucket slot, step, sample]
        self._pool = np.full((self.window, self.horizon, self.max_series), np.nan)
        self._cache: np.ndarray | None = None

    def sample(self, n_series: int) -> np.ndarray:
        """Indices of the tracked series in a panel of ``n_series``; stable as the panel grows."""
        if n_series > self._n:
            stride = self._stride
            while -(-n_series // stride) > self.max_series:
                stride *= 2
            keep = self._idx % stride == 0
            new = np.arange(-(-self._n // stride) * stride, n_series, stride, dtype=np.int64)
            self._idx = np.concatenate([self._idx[keep], new])
            self._pend = np.concatenate(
                [self._pend[:, keep], np.full((self.horizon, new.size, self.horizon), np.nan)], axis=1
            )
            self._pend_scale = np.concatenate(
                [self._pend_scale[:, keep], np.full((self.horizon, new.size), np.nan)], axis=1
            )
            self._stride, self._n = stride, n_series
        return self._idx

    def score(self, t: int, actual: np.ndarray) -> None:
        """Errors of the pending forecasts that target bucket ``t``; ``actual`` [m] of the sampled series."""
        h = np.arange(self.horizon)
        origins = (t - h) % self.horizon  # step h+1 of the forecast made at origin t-h targets t
        point = self._pend[origins, :, h]  # [H, m]
        scale = self._pend_scale[origins]  # [H, m]
        with np.errstate(invalid="ignore", divide="ignore"):
            err = (np.asarray(actual, dtype=float)[None, :] - point) / scale
        err[~np.isfinite(err)] = np.nan
        slot = self._pool[t % self.window]
        slot[:] = np.nan
        slot[:, : err.shape[1]] = err
        self._cache = None

    def remember(self, origin: int, point: np.ndarray, scale: np.ndarray) -> None:
        """Keep the sample's point forecasts [m, H] issued at ``origin`` and their scales [m] (0 = skip)."""
        self._pend[origin % self.horizon] = point
        self._pend_scale[origin % self.horizon] = np.where(scale > 0, scale, np.nan)

    def offsets(self) -> np.ndarray:
        """R [H, Q]: empirical quantiles of the pooled scaled errors per step (cached until new errors)."""
        if self._cache is None:
            out = np.zeros((self.horizon, self.quantiles.size))
            for h in range(self.horizon):
                v = self._pool[:, h, :].ravel()
                v = v[np.isfinite(v)]
                if v.size >= self.min_count:
                    out[h] = np.quantile(v, self.quantiles)
                elif h > 0:
                    out[h] = out[h - 1]
            self._cache = out
        return self._cache
