"""Lead-time demand: the calibrated quantiles of the demand summed over the next ``L`` buckets, ``L = 1 .. H``.

The quantiles of a sum are not the sums of the per-bucket quantiles: summed 80% bands over-cover the sum by
3.5-15.7 points on the real files (docs/benchmarks.md, "Lead-time demand"), because the errors of the
buckets partly cancel. The network's lead-time head (:class:`~tidecast.models.network.QuantileNet`, given
``lead_quantiles``) forecasts each sum directly, trained with the pinball loss on the summed labels
(:func:`~tidecast.models.loss.lead_time_loss`). Its levels are the forecast quantiles plus the service
levels stock targets are read at (:attr:`~tidecast.models.learner_config.LearnerConfig.lead_quantiles`).

:class:`LeadTimeQuantiles` calibrates what the head says as the per-step quantiles are calibrated
(:mod:`tidecast.models.calibration`): a :class:`~tidecast.models.calibration.QuantileCalibrator` over
``(L, level)`` whose offsets may reach ``5 x H`` scaled units (a 14-bucket sum runs to about 14 scales), met
at each close by the sums that matured against the sums *published* for them, kept for a sample of series in
a :class:`~tidecast.models.forecast_memory.ForecastMemory` (origin ``t - L`` meets the sum of its ``L``
buckets when bucket ``t`` closes).

>>> import numpy as np
>>> lead = LeadTimeQuantiles(horizon=2, levels=(0.1, 0.5, 0.9), clip=50.0)
>>> lead.begin(1)
>>> raw = np.array([[[0.5, 1.0, 1.5], [1.0, 2.0, 3.0]]], np.float32)     # scaled sums over L = 1, 2
>>> lead.put(0, raw, np.zeros(1, np.int64), np.array([2.0], np.float32))
>>> lead.last.tolist()                                                    # units: times the scale
[[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]]
>>> lead.put(0, raw, np.zeros(1, np.int64), np.array([0.3], np.float32))
>>> lead.last.astype(float).round(2).tolist()   # a sum of counts has a whole median; the others on their side
[[[0.0, 0.0, 0.45], [0.3, 1.0, 1.0]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .calibration import QuantileCalibrator, publish
from .features import RETURNS, UNITS
from .forecast_memory import ForecastMemory, SeriesIndex
from .quantiles import median_index

__all__ = ["LeadTimeQuantiles", "lead_sums", "young_peak"]


def lead_sums(units: np.ndarray, horizon: int) -> np.ndarray:
    """``[S, H]``: the units of the last ``L`` buckets of ``units`` [S, T] summed, for ``L = 1 .. H`` (0 past
    the history): column ``L - 1`` is the label of the origin ``L`` buckets back.

    >>> lead_sums(np.array([[1.0, 2.0, 3.0]]), 4).tolist()
    [[3.0, 5.0, 6.0, 0.0]]
    """
    out = np.zeros((units.shape[0], horizon))
    h = min(horizon, units.shape[1])
    out[:, :h] = units[:, units.shape[1] - h:][:, ::-1].cumsum(axis=1)
    return out


def young_peak(history: np.ndarray, first_seen: np.ndarray, t: int, window: int) -> np.ndarray:
    """``[S]``: for a series first seen fewer than ``window`` buckets before ``t``, its largest bucket of net
    sales (units less the units returned in that bucket) in the last ``window`` of ``history`` [S, T, 7]:
    an order cancelled within its bucket is no evidence of demand; infinite for the others (no bound).

    >>> h = np.zeros((3, 4, 7)); h[:, -1, UNITS] = [5.0, 2.0, 9.0]; h[2, -1, RETURNS] = 9.0
    >>> young_peak(h, np.array([9, 0, 9]), t=10, window=4).tolist()
    [5.0, inf, 0.0]
    """
    recent = history[:, -window:]
    peak = np.maximum(recent[..., UNITS].astype(np.float64) - recent[..., RETURNS], 0.0).max(axis=1)
    return np.where(int(t) - np.asarray(first_seen) < window, peak, np.inf)


class LeadTimeQuantiles:
    """The calibration of the lead-time head and the last forecast's lead-time quantiles (module docstring).

    ``levels``: the head's quantile levels; ``clip``: the bound on a step's scaled value (a sum over ``L``
    steps is held under ``L x clip``); ``gamma``, ``sample``: as the per-step calibration's.
    """

    def __init__(self, horizon: int, levels: Sequence[float], clip: float, gamma: float = 0.2,
                 sample: int = 2048, calibrate: bool = True) -> None:
        self.horizon, self.levels, self.calibrate = int(horizon), tuple(levels), calibrate
        self.calibrator = QuantileCalibrator(horizon, levels, median_index(levels), gamma=gamma,
                                             limit=5.0 * horizon)
        self.memory = ForecastMemory(horizon, sample)
        self._clip = np.float32(clip)
        self._median = median_index(levels)
        self._steps = np.arange(1, horizon + 1, dtype=np.float32)[None, :, None]  # L of each column
        self.last = np.zeros((0, horizon, len(self.levels)), np.float32)
        """Units ``[S, H, QL]`` of the last forecast: the calibrated quantiles of the sums over ``L = 1 .. H``."""
        self._held: list[np.ndarray] = []

    def begin(self, n: int) -> None:
        """A forecast of ``n`` series starts (chunks follow with :meth:`put`)."""
        self.last = np.zeros((n, self.horizon, len(self.levels)), np.float32)
        self._held = []

    def put(self, lo: int, raw: np.ndarray, band: np.ndarray, scale: np.ndarray,
            keep: np.ndarray | None = None, peak: np.ndarray | None = None) -> None:
        """The head's scaled quantiles ``raw`` [n, H, QL] of the rows ``lo .. lo + n``, with their volume
        ``band`` [n] and ``scale`` [n]: calibrated, bounded and kept in units in :attr:`last`. ``keep``: the
        chunk's rows (0-based in it) whose bounds are remembered for :meth:`remember`. ``peak`` [n]: a
        sum over ``L`` buckets is held under ``L x peak`` (:func:`young_peak`: a young series' scale rests
        on a few buckets, and one bulk order on its first day would have its lead-time quantiles at many
        times that order)."""
        held = None
        if self.calibrate:
            raw, held = self.calibrator.calibrate(raw, band)
        per_bucket = self._clip if peak is None else np.minimum(
            self._clip, (np.maximum(peak, 1.0) / scale).astype(np.float32))[:, None, None]
        bound = per_bucket * self._steps  # L x the bound of one bucket, in scaled units
        if held is not None:  # a quantile the bound holds down asks the calibration for no rise
            held = np.where(raw > bound, np.int8(-1), held)
        # a sum of counts is a count: its median is a whole number, as the published per-step median is
        self.last[lo:lo + len(raw)] = publish(np.minimum(raw, bound) * scale[:, None, None], self._median)
        if held is not None and keep is not None:
            self._held.append(held[keep])

    def remember(self, t: int, series: Sequence[tuple[str, str]], rows: np.ndarray, band: np.ndarray,
                 scale: np.ndarray) -> None:
        """Keep what was published at origin ``t`` for the sampled ``rows`` (``series``, ``band`` and
        ``scale`` of those rows, in the order :meth:`put` was given them)."""
        if not self.calibrate or not self._held:
            return
        self.memory.remember(t, series, self.last[rows], np.concatenate(self._held), band, scale, np.ones(1, bool))

    def meet(self, t: int, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
             rows: SeriesIndex | None = None) -> None:
        """Bucket ``t`` (the last of ``history`` [S, T, 7]) closed: each origin ``t - L`` still remembered meets
        the sum of its ``L`` buckets, one calibration step."""
        if not self.calibrate:
            return
        sums = lead_sums(history[:, :, UNITS], self.horizon)
        got = self.memory.matured(t, stores, skus, sums, first_seen, rows)
        self.calibrator.update_published(got.published, got.y, got.step, got.band, got.held, got.scale)

    def state_dict(self) -> dict[str, Any]:
        return {"calibration": self.calibrator.state_dict(), "memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calibrator.load_state_dict(state["calibration"])
        self.memory.load_state_dict(state["memory"])
