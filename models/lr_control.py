"""Global learning-rate multiplier driven by drift detectors on the prequential loss stream.

Each learn call reports two numbers about the labels that matured in that bucket, measured *before*
learning from them: the loss, and its mean gradient with respect to the forecasts (the *bias*:
``P(y < q) - tau`` averaged over labels and quantiles, 0 in expectation for a calibrated model). Each
goes through a :class:`Channel`: a slow exponential trend, the spread of the deviations from it, and
river's Page-Hinkley test (a CUSUM) on the standardised deviation. The loss channel works on ``log(loss)``
and watches increases; the bias channel watches both directions. The bias channel matters with per-series
scaling: after a level shift the scaled loss of a biased forecast in the new regime can look just like the
old normal loss (relative noise shrinks as levels rise), while the bias is unmistakable, both while the
model under-forecasts and when it later over-shoots.

With the classic CUSUM settings ``delta = 0.5`` and ``threshold = 5`` (in standard deviations) a
stationary stream rarely alarms while a jump of a few standard deviations is caught within a bucket or two.
An alarm counts only when the channel is off its normal in the alarm's direction, so the return to normal
after a drift (which Page-Hinkley, reset at the drift, also sees as a change) raises nothing.

On drift the multiplier jumps to ``boost`` and then decays geometrically (``decay`` per update in which the
learner learns, so a quarantine does not use it up) back to exactly 1.0; a new alarm while the drift
persists raises it again. With ``hold=True`` it is instead held
while either channel is still off by more than ``settle_tolerance`` deviations. An *episode* runs from an
alarm until both channels are back within tolerance; :attr:`RateController.new_episode` tells the learner
when one starts (it then quarantines the samples straddling the change, see
:mod:`tidecast.models.learner`). The state is a dict of numbers, the detectors' internals included.

Tuning (``bench/adaptation.py --sweep``, seeds the report does not use; mean buckets to recover over a
level shift of 50% and of all series and a change of the weekly pattern): boost 1: 22.3, 2: 22.3, 3: 22.8,
4: 22.7, 5: 29.3. The default is the best, 2; beyond 4 the rate hurts. Holding the boost while the channels
are unsettled was slower after level shifts: with per-series scaling a level shift is absorbed by the inputs
within the scale window, and learning hard from that transient teaches a correction that has to be
unlearned. What does speed up recovery from level shifts is the learner's quarantine.

>>> ctl = RateController(RateControlConfig(warmup=5))
>>> flags = [ctl.update(1.0 + 0.01 * (i % 3), 0.01 * (i % 2)) for i in range(30)] + [ctl.update(3.0, 0.3)]
>>> flags[-1], ctl.multiplier
(True, 2.0)
>>> for _ in range(300):
...     _ = ctl.update(3.0, 0.3)
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
    """Tuning of :class:`RateController` (deviations are measured in standard deviations)."""

    boost: float = 2.0
    decay: float = 0.7
    settle_tolerance: float = 2.0
    hold: bool = False
    trend_rate: float = 0.05
    clip: float = 3.0
    loss_spread_floor: float = 0.02
    bias_spread_floor: float = 0.005
    ph_delta: float = 0.5
    ph_threshold: float = 5.0
    ph_min_instances: int = 3
    warmup: int = 20

    def __post_init__(self) -> None:
        if self.boost < 1.0 or not 0.0 <= self.decay < 1.0 or not 0.0 < self.trend_rate <= 1.0:
            raise ValueError("need boost >= 1, 0 <= decay < 1 and 0 < trend_rate <= 1")


_GAUSS_MAD = math.sqrt(math.pi / 2.0)  # standard deviation / mean absolute deviation for a Gaussian
_PH_FIELDS = ("_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease", "_drift_detected")


class Channel:
    """Trend + spread + Page-Hinkley on one signal; ``update`` returns (standardised score, drift)."""

    def __init__(self, mode: str, rate: float, floor: float, config: RateControlConfig) -> None:
        self.mode, self.rate, self.floor, self.config = mode, rate, floor, config
        self.n, self.trend, self.mad, self.score = 0, 0.0, 0.0, 0.0
        self.detector = self._new_detector()

    def _new_detector(self) -> PageHinkley:
        c = self.config
        return PageHinkley(min_instances=c.ph_min_instances, delta=c.ph_delta, threshold=c.ph_threshold,
                           alpha=1.0, mode=self.mode)

    def update(self, value: float, floor: float = 0.0, listen: bool = True) -> tuple[float, bool]:
        """Feed one value; ``floor`` raises the spread floor (e.g. a sampling standard error).

        While not ``listen``-ing (warm-up) the trend and spread follow every value; afterwards each value
        moves them by at most ``clip`` spreads (winsorised), so an abrupt drift keeps being measured against
        the old normal for a while instead of inflating the spread at once.
        """
        self.n += 1
        if self.n == 1:
            self.trend = value
            return 0.0, False
        dev = value - self.trend
        spread = max(_GAUSS_MAD * self.mad, self.floor, floor if math.isfinite(floor) else 0.0)
        self.score = dev / spread
        clip = self.config.clip * spread
        step = max(-clip, min(clip, dev)) if listen and self.n > 2 else dev
        self.trend += self.rate * step
        self.mad += self.rate * (abs(step) - self.mad)
        if not listen:
            return self.score, False
        self.detector.update(self.score)
        if not self.detector.drift_detected:
            return self.score, False
        # an alarm counts only if the signal is off its normal *in the alarm's direction*: a return towards
        # normal after an earlier drift (Page-Hinkley, reset at that drift, also sees it as a change) is not
        d = self.detector
        upward = (d._sum_increase - d._min_increase) > d.threshold
        tol = self.config.settle_tolerance
        return self.score, (self.score > tol) if upward else (self.score < -tol)

    def state_dict(self) -> dict[str, Any]:
        d = self.detector
        return {"n": self.n, "trend": self.trend, "mad": self.mad, "score": self.score,
                "mean_n": float(d._x_mean.n), "mean": float(d._x_mean.get()),
                **{name: float(getattr(d, name)) for name in _PH_FIELDS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n, self.trend = int(state["n"]), float(state["trend"])
        self.mad, self.score = float(state["mad"]), float(state["score"])
        det = self._new_detector()
        det._x_mean.n, det._x_mean._mean = float(state["mean_n"]), float(state["mean"])
        for name in _PH_FIELDS:
            setattr(det, name, bool(state[name]) if name == "_drift_detected" else float(state[name]))
        self.detector = det


class RateController:
    """Multiplier on the base learning rate; ``update(loss, bias)`` once per learn call returns drift."""

    def __init__(self, config: RateControlConfig | None = None) -> None:
        self.config = c = config or RateControlConfig()
        self.multiplier = 1.0
        self.n = 0
        self.in_episode = False  # from an alarm until both channels are back within tolerance
        self.new_episode = False  # whether the last update opened an episode
        self.loss = Channel("up", c.trend_rate, c.loss_spread_floor, c)
        self.bias = Channel("both", c.trend_rate, c.bias_spread_floor, c)

    def update(
        self, loss: float, bias: float = math.nan, bias_se: float = math.nan, learning: bool = True
    ) -> bool:
        """Feed one bucket's loss (> 0) and bias (with its standard error); True when drift was detected.

        ``learning=False`` (the learner will not take a step this bucket) keeps the boost from decaying.
        """
        c = self.config
        if not (math.isfinite(loss) and loss > 0.0):
            return False
        self.n += 1
        listen = self.n > c.warmup
        loss_score, loss_drift = self.loss.update(math.log(loss), listen=listen)
        bias_score, bias_drift = 0.0, False
        if math.isfinite(bias):
            bias_score, bias_drift = self.bias.update(bias, floor=bias_se, listen=listen)
        drift = loss_drift or bias_drift
        settled = loss_score < c.settle_tolerance and abs(bias_score) < c.settle_tolerance
        self.new_episode = drift and not self.in_episode
        if drift:
            self.in_episode = True
            self.multiplier = max(self.multiplier, c.boost)
        elif learning and (settled or not c.hold):
            self.multiplier = 1.0 + (self.multiplier - 1.0) * c.decay
            if self.multiplier < 1.0 + 1e-3:
                self.multiplier = 1.0
        if self.in_episode and settled and not drift:
            self.in_episode = False
        return drift

    def state_dict(self) -> dict[str, Any]:
        """Every number needed to continue exactly, the Page-Hinkley detectors' internals included."""
        return {"multiplier": self.multiplier, "n": self.n, "in_episode": self.in_episode,
                "new_episode": self.new_episode, "loss": self.loss.state_dict(),
                "bias": self.bias.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the detectors are rebuilt from their numbers)."""
        self.multiplier, self.n = float(state["multiplier"]), int(state["n"])
        self.in_episode, self.new_episode = bool(state["in_episode"]), bool(state["new_episode"])
        self.loss.load_state_dict(state["loss"])
        self.bias.load_state_dict(state["bias"])
