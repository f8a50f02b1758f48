"""Online calibration of the quantile forecasts: adaptive offsets per volume band, step and quantile level.

The network's quantiles are learned from the pinball loss, which makes them calibrated only on average over
what it learned from; on the slowest series of Online Retail its p90 sat one unit too high. This module
keeps an additive offset ``theta[b, h, j]`` (in the series' scaled units) per volume band ``b``, step ``h``
and quantile level ``tau_j``, added to the network's quantile before it is turned into units. At every
close, the labels that matured there update the offsets with the *quantile tracking* rule of Angelopoulos,
Candes and Tibshirani (2023, "Conformal PID Control for Time Series Prediction", NeurIPS), the online
gradient step on the pinball loss that generalises the adaptive conformal inference of Gibbs and Candes
(2021, "Adaptive Conformal Inference Under Distribution Shift", NeurIPS)::

    theta <- theta - gamma * mean_over_labels( P(y < q) - tau )

so in the long run the share of actuals below each calibrated quantile matches its level, in each band and
step, whatever the model does (Gibbs and Candes' long-run coverage guarantee holds for any sequence, as the
offsets stay bounded). For counts ``P(y < q)`` is the randomised indicator ``clip(q - y + 1/2, 0, 1)``:
the count spread over ``y +/- 1/2``, as in the count-aware pinball loss (:mod:`tidecast.models.loss`), so a
p10 of 0 next to a zero actual counts as half a miss, not a whole one.

Bands (``BAND_EDGES``, units per bucket of the series' recent mean): slow movers, whose counts are mostly
0 and 1, are calibrated apart from the rest. The median is left alone (``fixed``): the point forecast
stays the network's. Calibrated quantiles are kept non-negative and monotone: each level below the median
at most the median, each above at least it, then a running maximum along the levels.

>>> import numpy as np
>>> cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.5)
>>> q = np.array([[[0.0, 1.0, 3.0]]], np.float32)          # [N, H, Q] scaled quantiles, one series
>>> scale = np.ones(1, np.float32)
>>> cal.update(q, np.array([[1.0]], np.float32), np.ones((1, 1), bool), scale, count_aware=True)
>>> cal.offsets[0, 0].round(3).tolist()                     # p90 was far above the actual: moved down
[0.05, 0.0, -0.05]
>>> cal.apply(q, scale).astype(float).round(2).tolist()
[[[0.05, 1.0, 2.95]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BAND_EDGES", "QuantileCalibrator"]

BAND_EDGES: tuple[float, ...] = (0.5, 2.0, 8.0)
"""Volume bands by the series' recent mean units per bucket: < 0.5, 0.5-2, 2-8, >= 8."""


class QuantileCalibrator:
    """Additive quantile offsets ``[bands, H, Q]`` in scaled units, learned online (module docstring).

    ``fixed``: the index of a level left uncalibrated (the median), or None. ``gamma``: step size per close.
    ``limit``: the offsets stay within +-``limit`` scaled units (a bounded offset, as the guarantee needs).
    """

    def __init__(self, horizon: int, quantiles: Sequence[float], fixed: int | None, gamma: float = 0.2,
                 limit: float = 5.0, edges: Sequence[float] = BAND_EDGES) -> None:
        self.taus = np.asarray(quantiles, np.float64)
        self.fixed, self.gamma, self.limit = fixed, float(gamma), float(limit)
        self.edges = np.asarray(edges, np.float64)
        self.offsets = np.zeros((len(self.edges) + 1, horizon, len(self.taus)), np.float64)
        self.updates = 0

    def bands(self, scale: np.ndarray, scale_eps: float = 1.0) -> np.ndarray:
        """Band index of each series from its scale (recent mean units + ``scale_eps``)."""
        return np.searchsorted(self.edges, np.asarray(scale, np.float64) - scale_eps, side="right")

    def apply(self, q: np.ndarray, scale: np.ndarray, scale_eps: float = 1.0) -> np.ndarray:
        """Calibrated scaled quantiles ``[N, H, Q]``: offsets added, >= 0, monotone, the fixed level kept."""
        out = q + self.offsets[self.bands(scale, scale_eps)].astype(q.dtype)
        if self.fixed is not None:
            mid = q[..., self.fixed : self.fixed + 1]
            out[..., : self.fixed] = np.minimum(out[..., : self.fixed], mid)
            out[..., self.fixed + 1 :] = np.maximum(out[..., self.fixed + 1 :], mid)
            out[..., self.fixed] = mid[..., 0]
        np.maximum(out, 0.0, out=out)
        return np.maximum.accumulate(out, axis=-1)

    def update(self, q: np.ndarray, y: np.ndarray, mask: np.ndarray, scale: np.ndarray, count_aware: bool,
               scale_eps: float = 1.0) -> None:
        """One quantile-tracking step from matured labels: ``q`` [N, H, Q] the network's scaled quantiles
        (uncalibrated), ``y`` [N, H] units, ``mask`` [N, H] the labels that matured now."""
        band = self.bands(scale, scale_eps)
        raw = q + self.offsets[band]
        cal = self.apply(q, scale, scale_eps)
        diff = cal * scale[:, None, None] - y[..., None]  # units
        below = np.clip(diff + 0.5, 0.0, 1.0) if count_aware else (diff > 0) + 0.5 * (diff == 0)
        grad = below - self.taus
        # a bound that holds the quantile (0, the median, the level below) blocks the move it asks for: no
        # step then, or the offset would run away (a p10 of all-zero series cannot go below 0)
        held = ((cal > raw) & (grad > 0)) | ((cal < raw) & (grad < 0))
        grad = np.where(held, 0.0, grad) * mask[..., None]  # [N, H, Q]
        sums = np.zeros_like(self.offsets)
        np.add.at(sums, band, grad)
        counts = np.zeros(self.offsets.shape[:2])
        np.add.at(counts, band, mask.astype(np.float64))
        step = np.divide(sums, counts[..., None], out=np.zeros_like(sums), where=counts[..., None] > 0)
        if self.fixed is not None:
            step[..., self.fixed] = 0.0
        self.offsets = np.clip(self.offsets - self.gamma * step, -self.limit, self.limit)
        self.updates += int(bool(mask.any()))

    def state_dict(self) -> dict[str, Any]:
        """Plain values only (safe for a weights-only checkpoint)."""
        return {"offsets": self.offsets.tolist(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        offsets = np.asarray(state["offsets"], np.float64)
        if offsets.shape != self.offsets.shape:
            raise ValueError(f"calibration offsets of shape {offsets.shape}, expected {self.offsets.shape}")
        self.offsets, self.updates = offsets, int(state["updates"])
