"""Online calibration of the quantile forecasts: adaptive offsets per volume band, step and quantile level.

The network's quantiles are learned from the pinball loss, which makes them calibrated only on average over
what it learned from; on the slowest series of Online Retail its p90 sat one unit too high. This module
keeps an additive offset ``theta[b, h, j]`` (in the series' scaled units) per volume band ``b``, step ``h``
and quantile level ``tau_j``, added to the network's quantile before it is turned into units. At every
close, the labels that matured there update the offsets with the *quantile tracking* rule of Angelopoulos,
Candes and Tibshirani (2023, "Conformal PID Control for Time Series Prediction", NeurIPS), the online
gradient step on the pinball loss that generalises the adaptive conformal inference of Gibbs and Candes
(2021, "Adaptive Conformal Inference Under Distribution Shift", NeurIPS)::

    theta <- theta - gamma * mean_over_labels( 1{y below q} - tau )

so in the long run the share of actuals below each calibrated quantile matches its level, in each band and
step, whatever the model does (Gibbs and Candes' long-run coverage guarantee holds for any sequence, as the
offsets stay bounded). The indicator is taken on what is *published* (the calibrated quantile, in units,
as the forecast message carries it) against the actual count, with the scorer's convention for ties: an
actual equal to a lower quantile is not below it, one equal to an upper quantile is not above it (the 80%
band is closed). It is the gradient of the pinball loss on the published values, the loss WSPL averages, so
the offsets move towards what the scorer rewards and coverage80 counts what its level says. (The network
itself learns the count-aware loss, a count spread over ``y +/- 1/2``: that smooth gradient is what a small
model learns well from; the calibration then answers for the published values.)

Bands (``BAND_EDGES``, mean units per bucket): slow movers, whose counts are mostly 0 and 1, are calibrated
apart from the rest. The band is the *series'*: its mean over the whole history the learner sees at the close
(the panel's ``lags + horizon`` buckets, from its first sale on), the same for the forecast made at a close and
for the labels scored there, so a fast series in a quiet week is not calibrated with the slow ones (the
sample's own 28-bucket window mixed them). The median is left alone (``fixed``): the point forecast
stays the network's. Calibrated quantiles are kept non-negative and monotone: each level below the median
at most the median, each above at least it, then a running maximum along the levels.

>>> import numpy as np
>>> cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.5)
>>> q = np.array([[[0.0, 1.0, 3.0]]], np.float32)          # [N, H, Q] scaled quantiles, one series
>>> scale, band = np.ones(1, np.float32), cal.bands(np.array([0.2]))  # a slow series: band 0
>>> cal.update(q, np.array([[1.0]], np.float32), np.ones((1, 1), bool), scale, band)
>>> cal.offsets[0, 0].round(3).tolist()                     # p10 below the actual, p90 above: outwards less
[0.05, 0.0, -0.05]
>>> cal.apply(q, band).astype(float).round(2).tolist()
[[[0.05, 1.0, 2.95]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .features import UNITS

__all__ = ["BAND_EDGES", "QuantileCalibrator", "publish", "series_level"]

BAND_EDGES: tuple[float, ...] = (0.5, 2.0, 8.0)
"""Volume bands by the series' mean units per bucket: < 0.5, 0.5-2, 2-8, >= 8."""


def publish(units: np.ndarray, median: int | None) -> np.ndarray:
    """The published quantiles ``[..., Q]`` (units) of the model's continuous ones: the median rounded to the
    nearest whole count (the count's own median, which no fractional value beats on absolute error), the other
    levels as they are but kept on their side of it. See docs/architecture.md, "Published quantiles".

    >>> publish(np.array([[0.3, 0.45, 2.6], [0.2, 1.6, 3.1]]), 1).round(2).tolist()
    [[0.0, 0.0, 2.6], [0.2, 2.0, 3.1]]
    """
    out = np.array(units, dtype=units.dtype, copy=True)
    if median is None:
        return out
    mid = np.floor(out[..., median : median + 1] + 0.5)
    out[..., :median] = np.minimum(out[..., :median], mid)
    out[..., median + 1 :] = np.maximum(out[..., median + 1 :], mid)
    out[..., median] = mid[..., 0]
    return out


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

    def bands(self, level: np.ndarray) -> np.ndarray:
        """Band index of each series from its volume ``level`` (mean units per bucket, see :data:`BAND_EDGES`)."""
        return np.searchsorted(self.edges, np.asarray(level, np.float64), side="right")

    def apply(self, q: np.ndarray, band: np.ndarray) -> np.ndarray:
        """Calibrated scaled quantiles ``[N, H, Q]``: offsets of each series' ``band`` added, >= 0, monotone,
        the fixed level kept."""
        out = self._shifted(q, band)
        if self.fixed is not None:
            mid = q[..., self.fixed : self.fixed + 1]
            out[..., : self.fixed] = np.minimum(out[..., : self.fixed], mid)
            out[..., self.fixed + 1 :] = np.maximum(out[..., self.fixed + 1 :], mid)
            out[..., self.fixed] = mid[..., 0]
        np.maximum(out, 0.0, out=out)
        return np.maximum.accumulate(out, axis=-1)

    def _shifted(self, q: np.ndarray, band: np.ndarray) -> np.ndarray:
        """``q`` plus its band's offsets, in ``q``'s dtype: :meth:`update` compares it with :meth:`apply`'s
        result, so both must round alike. (A float64 sum against a float32 one differs in the last bit, the
        same way for a whole band while its offset stays put: read as a bound holding the quantile, it held
        every move one way, and the offsets ratcheted outwards.)"""
        return q + self.offsets[band].astype(q.dtype)

    def update(self, q: np.ndarray, y: np.ndarray, mask: np.ndarray, scale: np.ndarray, band: np.ndarray,
               bound: float = np.inf) -> None:
        """One quantile-tracking step from matured labels: ``q`` [N, H, Q] the network's scaled quantiles
        (uncalibrated), ``y`` [N, H] units, ``mask`` [N, H] the labels that matured now, ``band`` [N] each
        series' band; the forecasts were published as ``publish(min(calibrated, bound) * scale)`` (units)."""
        raw = self._shifted(q, band)
        cal = self.apply(q, band)
        published = publish(np.minimum(cal, bound) * scale[:, None, None], self.fixed)
        # the pinball loss's gradient on the published values, a tie counted as inside the closed band the
        # scorer counts (an actual equal to p10 is not below it; one equal to p90 is not above it)
        upper = self.taus > 0.5
        below = np.where(upper, published >= y[..., None], published > y[..., None]).astype(np.float64)
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


def series_level(history: np.ndarray, first_seen: np.ndarray, t: int) -> np.ndarray:
    """Each series' mean units per bucket over ``history`` (ending at bucket ``t``), from its first activity on.

    >>> h = np.zeros((2, 4, 7), np.float32); h[:, :, 0] = [[1, 2, 3, 2], [0, 0, 4, 2]]
    >>> series_level(h, np.array([0, 12]), t=13).tolist()   # the second series started at bucket 12
    [2.0, 3.0]
    """
    n_pos = history.shape[1]
    first = np.asarray(first_seen, np.int64) - (int(t) - (n_pos - 1))  # array position of the first activity
    active = np.arange(n_pos) >= np.clip(first, 0, n_pos - 1)[:, None]
    units = np.where(active, history[..., UNITS], 0.0).sum(axis=1)
    return (units / np.maximum(active.sum(axis=1), 1)).astype(np.float64)
