"""Online calibration of the quantile forecasts: adaptive offsets per volume band, step and quantile level.

The network's quantiles are learned from the pinball loss, which makes them calibrated only on average over
what it learned from; on the slowest series of Online Retail its p90 sat one unit too high. This module
keeps an additive offset ``theta[b, h, j]`` (in the series' scaled units) per volume band ``b``, step ``h``
and quantile level ``tau_j``, added to the network's quantile before it is turned into units. At every
close, the labels that matured there update the offsets with the *quantile tracking* rule of Angelopoulos,
Candes and Tibshirani (2023, "Conformal PID Control for Time Series Prediction", NeurIPS), the online
gradient step on the pinball loss that generalises the adaptive conformal inference of Gibbs and Candes
(2021, "Adaptive Conformal Inference Under Distribution Shift", NeurIPS)::

    theta <- theta - gamma * size * mean_over_labels( 1{y below q} - tau )

so in the long run the share of actuals below each calibrated quantile matches its level, in each band and
step, whatever the model does (Gibbs and Candes' long-run coverage guarantee holds for any sequence, as the
offsets stay bounded). Each label is met by the forecast *published* for it, H closes before at most
(:mod:`tidecast.models.forecast_memory`): a forecast re-made when the label matures comes from a network that
has learned since, and misses less than the published one did. ``size`` is the recent mean absolute error of
the median in scaled units, per band and step (an average over about 20 closes, taken before the close's own
labels): Angelopoulos et al. scale the step by the size of the scores (their trailing maximum) so that one
rate suits any unit; a step of 0.2 scales swung a smooth store's band (errors of 0.05-0.1 scales) across its
whole width at every close, while it suits a slow item's (errors near 1). The indicator is taken on the
published value (the calibrated quantile, in units, as the forecast message carries it) against the actual
count, with the scorer's convention for ties: an
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
>>> cal.update(q, np.array([[2.0]], np.float32), np.ones((1, 1), bool), scale, band)   # 1 scale off the median
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

MAGNITUDE_RATE = 0.05
"""Weight of a close's labels in the running size of the scores that scales the calibration's step."""
MAGNITUDE_CAP = 50.0
"""The most one label's error (scales) counts in that size: the learner's label bound (``FeatureSpec.clip``)."""
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
        self.magnitude = np.full(self.offsets.shape[:2], np.nan)  # recent mean |y - median| / scale, per band and step
        self.updates = 0

    def bands(self, level: np.ndarray) -> np.ndarray:
        """Band index of each series from its volume ``level`` (mean units per bucket, see :data:`BAND_EDGES`)."""
        return np.searchsorted(self.edges, np.asarray(level, np.float64), side="right")

    def apply(self, q: np.ndarray, band: np.ndarray) -> np.ndarray:
        """Calibrated scaled quantiles ``[N, H, Q]``: offsets of each series' ``band`` added, >= 0, monotone,
        the fixed level kept."""
        return self.calibrate(q, band)[0]

    def calibrate(self, q: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply`, and int8 ``[N, H, Q]``: where a bound holds each calibrated quantile (+1: lifted by the
        median, 0 or the level below; -1: lowered by the median; 0: free), for :meth:`update_published`."""
        raw = self._shifted(q, band)
        out = raw.copy()
        if self.fixed is not None:
            mid = q[..., self.fixed : self.fixed + 1]
            out[..., : self.fixed] = np.minimum(out[..., : self.fixed], mid)
            out[..., self.fixed + 1 :] = np.maximum(out[..., self.fixed + 1 :], mid)
            out[..., self.fixed] = mid[..., 0]
        np.maximum(out, 0.0, out=out)
        out = np.maximum.accumulate(out, axis=-1)
        return out, np.sign(out - raw).astype(np.int8)

    def _shifted(self, q: np.ndarray, band: np.ndarray) -> np.ndarray:
        """``q`` plus its band's offsets, in ``q``'s dtype: the held flags of :meth:`calibrate` compare the two,
        so both must round alike. (A float64 sum against a float32 one differs in the last bit, the same way
        for a whole band while its offset stays put: read as a bound holding the quantile, it held every move
        one way, and the offsets ratcheted outwards.)"""
        return q + self.offsets[band].astype(q.dtype)

    def update(self, q: np.ndarray, y: np.ndarray, mask: np.ndarray, scale: np.ndarray, band: np.ndarray,
               bound: float = np.inf) -> None:
        """One step from forecasts calibrated with the *current* offsets: ``q`` [N, H, Q] the network's scaled
        quantiles (uncalibrated), ``y`` [N, H] units, ``mask`` [N, H] the labels to count, ``band`` [N]; the
        forecasts are published as ``publish(min(calibrated, bound) * scale)`` (units). (The learner calibrates
        on the forecasts it published H closes ago, :meth:`update_published`.)"""
        cal, held = self.calibrate(q, band)
        published = publish(np.minimum(cal, bound) * scale[:, None, None], self.fixed)
        rows, step = np.nonzero(mask)
        self.update_published(published[rows, step], y[rows, step], step, band[rows], held[rows, step],
                              np.broadcast_to(scale, band.shape)[rows])

    def update_published(self, published: np.ndarray, y: np.ndarray, step: np.ndarray, band: np.ndarray,
                         held: np.ndarray, scale: np.ndarray) -> None:
        """One quantile-tracking step from labels met by published forecasts: ``published`` [M, Q] units,
        ``y`` [M] units, ``step`` [M] (0-based), ``band`` [M] and ``scale`` [M] (units) of each, ``held``
        [M, Q] as :meth:`calibrate` gave it when the forecast was made."""
        if len(y) == 0:
            return
        # the pinball loss's gradient on the published values, a tie counted as inside the closed band the
        # scorer counts (an actual equal to p10 is not below it; one equal to p90 is not above it)
        upper = self.taus > 0.5
        below = np.where(upper, published >= y[:, None], published > y[:, None]).astype(np.float64)
        grad = below - self.taus
        # a bound that holds the quantile (0, the median, the level below) blocks the move it asks for: no
        # step then, or the offset would run away (a p10 of all-zero series cannot go below 0)
        grad = np.where(((held > 0) & (grad > 0)) | ((held < 0) & (grad < 0)), 0.0, grad)
        sums = np.zeros_like(self.offsets)
        np.add.at(sums, (band, step), grad)
        counts = np.zeros(self.offsets.shape[:2])
        np.add.at(counts, (band, step), 1.0)
        steps = np.divide(sums, counts[..., None], out=np.zeros_like(sums), where=counts[..., None] > 0)
        if self.fixed is not None:
            steps[..., self.fixed] = 0.0
        size = self._step_size(published, y, step, band, scale, counts)
        self.offsets = np.clip(self.offsets - self.gamma * size[..., None] * steps, -self.limit, self.limit)
        self.updates += 1

    def _step_size(self, published: np.ndarray, y: np.ndarray, step: np.ndarray, band: np.ndarray,
                   scale: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``[bands, H]``: the recent mean absolute error of the median in scaled units (the scores' size),
        before this close's labels, which then update it (an average over about ``1 / MAGNITUDE_RATE``
        closes; a band and step's first labels set it); 1 without a fixed median. A label's error counts
        at most 5 times the size so far (at most ``MAGNITUDE_CAP`` scales, the learner's label bound)."""
        if self.fixed is None:
            return np.ones(self.offsets.shape[:2])
        error = np.abs(y - published[:, self.fixed]) / np.maximum(scale, 1e-9)
        known = self.magnitude[band, step]  # one wild label must not set the size for weeks: each counts at most
        error = np.minimum(error, np.where(np.isnan(known), MAGNITUDE_CAP, np.minimum(MAGNITUDE_CAP, 5.0 * known)))
        errors = np.zeros(self.offsets.shape[:2])
        np.add.at(errors, (band, step), error)
        now = np.divide(errors, counts, out=np.full_like(errors, np.nan), where=counts > 0)
        size = np.where(np.isnan(self.magnitude), now, self.magnitude)
        blended = (1.0 - MAGNITUDE_RATE) * self.magnitude + MAGNITUDE_RATE * now
        self.magnitude = np.where(counts > 0, np.where(np.isnan(self.magnitude), now, blended), self.magnitude)
        return np.nan_to_num(size, nan=0.0)

    def state_dict(self) -> dict[str, Any]:
        """Plain values only (safe for a weights-only checkpoint)."""
        return {"offsets": self.offsets.tolist(), "magnitude": self.magnitude.tolist(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        offsets = np.asarray(state["offsets"], np.float64)
        if offsets.shape != self.offsets.shape:
            raise ValueError(f"calibration offsets of shape {offsets.shape}, expected {self.offsets.shape}")
        self.offsets, self.updates = offsets, int(state["updates"])
        self.magnitude = np.asarray(state["magnitude"], np.float64)


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
