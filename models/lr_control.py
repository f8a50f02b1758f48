"""Global learning-rate multiplier driven by a drift detector on the prequential loss stream.

Each learn call reports the loss of the labels that matured in that bucket, measured *before* learning from
them. The controller works on ``z = log(loss)`` so it is unit-free: it keeps a slow exponential trend of
``z`` and the spread of the deviations from it, and feeds the standardised deviation
``(z - trend) / spread`` to river's one-sided Page-Hinkley test (a CUSUM). With the classic CUSUM settings
``delta = 0.5`` and ``threshold = 5`` (in standard deviations) a stationary stream alarms rarely, while a
jump of a few standard deviations is caught in one or two buckets.

On drift the multiplier jumps to ``boost``; it is held while the loss is still above its trend and then
decays geometrically back to exactly 1.0 once the loss has settled (the trend itself catches up with a new
level, so the return is guaranteed). The state is a dict of numbers, the detector's included.

>>> ctl = RateController(RateControlConfig(warmup=5))
>>> flags = [ctl.update(1.0 + 0.01 * (i % 3)) for i in range(30)] + [ctl.update(3.0)]
>>> flags[-1], ctl.multiplier
(True, 4.0)
>>> for _ in range(200):
...     _ = ctl.update(3.0)
>>> ctl.multiplier
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from river.drift import PageHinkley


@dataclass(frozen=True, slots=True)
class RateControlConfig:
    """Tuning of :class:`RateController` (deviations are in standard deviations of the log-loss)."""

    boost: float = 4.0
    decay: float = 0.8
    settle_tolerance: float = 1.0
    trend_rate: float = 0.05
    spread_floor: float = 0.02
    ph_delta: float = 0.5
    ph_threshold: float = 5.0
    ph_alpha: float = 1.0
    ph_min_instances: int = 3
    warmup: int = 20

    def __post_init__(self) -> None:
        if self.boost < 1.0 or not 0.0 <= self.decay < 1.0 or not 0.0 < self.trend_rate <= 1.0:
            raise ValueError("need boost >= 1, 0 <= decay < 1 and 0 < trend_rate <= 1")


_PH_FIELDS = ("_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease", "_drift_detected")


class RateController:
    """Multiplier on the base learning rate; ``update(loss)`` once per learn call returns the drift flag."""

    def __init__(self, config: RateControlConfig | None = None) -> None:
        self.config = config or RateControlConfig()
        self.multiplier = 1.0
        self.n = 0
        self.trend = 0.0
        self.var = 0.0
        self.last_score = 0.0
        self.detector = self._new_detector()

    def _new_detector(self) -> PageHinkley:
        c = self.config
        return PageHinkley(
            min_instances=c.ph_min_instances, delta=c.ph_delta, threshold=c.ph_threshold, alpha=c.ph_alpha,
            mode="up",
        )

    def update(self, loss: float) -> bool:
        """Feed one loss value (> 0); returns True when drift was detected at this step."""
        c = self.config
        if not (math.isfinite(loss) and loss > 0.0):
            return False
        z = math.log(loss)
        self.n += 1
        if self.n == 1:
            self.trend = z
            return False
        dev = z - self.trend
        spread = max(math.sqrt(self.var), c.spread_floor)
        score = dev / spread
        self.trend += c.trend_rate * dev
        self.var += c.trend_rate * (dev * dev - self.var)
        self.last_score = score
        if self.n <= c.warmup:
            return False
        self.detector.update(score)
        drift = bool(self.detector.drift_detected)
        if drift:
            self.multiplier = max(self.multiplier, c.boost)
        elif self.multiplier > 1.0 and score < c.settle_tolerance:
            self.multiplier = 1.0 + (self.multiplier - 1.0) * c.decay
            if self.multiplier < 1.0 + 1e-3:
                self.multiplier = 1.0
        return drift

    def state_dict(self) -> dict[str, Any]:
        """Every number needed to continue exactly, the Page-Hinkley detector's internals included."""
        d = self.detector
        return {
            "multiplier": self.multiplier,
            "n": self.n,
            "trend": self.trend,
            "var": self.var,
            "last_score": self.last_score,
            "detector": {
                "mean_n": float(d._x_mean.n),
                "mean": float(d._x_mean.get()),
                **{name: float(getattr(d, name)) for name in _PH_FIELDS},
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the detector is rebuilt from its numbers)."""
        self.multiplier = float(state["multiplier"])
        self.n = int(state["n"])
        self.trend, self.var = float(state["trend"]), float(state["var"])
        self.last_score = float(state["last_score"])
        det = self._new_detector()
        saved = state["detector"]
        det._x_mean.n, det._x_mean._mean = float(saved["mean_n"]), float(saved["mean"])
        for name in _PH_FIELDS:
            setattr(det, name, bool(saved[name]) if name == "_drift_detected" else float(saved[name]))
        self.detector = det
