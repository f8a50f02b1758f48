"""The learner's configuration (everything that shapes the model and its learning, saved with each checkpoint)
and the format of the state it saves.

>>> cfg = LearnerConfig(horizon=7, hidden=32)
>>> LearnerConfig.from_dict(cfg.to_dict()) == cfg, cfg.features.horizon
(True, 7)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .features import FeatureSpec
from .lr_control import RateControlConfig
from .quantiles import DEFAULT_QUANTILES, check_quantiles

DEFAULT_SERVICE_LEVELS: tuple[float, ...] = (0.9, 0.95, 0.98, 0.99)
"""Service levels whose lead-time quantiles are learned besides the forecast quantiles: the common targets of
a retailer's stock (the order-up-to level is the service quantile of the demand over lead time + review)."""

__all__ = ["DEFAULT_SERVICE_LEVELS", "STATE_FORMAT", "LearnerConfig", "check_format"]

STATE_FORMAT = "tidecast.learner/6"  # /2: mean head; /3: dormancy, calibration; /4: month day, closings beside;
# /5: calibrated on the published forecasts (forecast memory); /6: lead-time calibration and memory


@dataclass(frozen=True, slots=True)
class LearnerConfig:
    """Everything that shapes the model and its learning; frozen, and saved with every checkpoint."""

    horizon: int = 14
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    lags: int = 28
    aux_lags: int = 7
    scale_window: int = 28
    scale_eps: float = 1.0
    hidden: int = 64
    depth: int = 2
    mean_hidden: int = 64
    sku_buckets: int = 1 << 14
    sku_dim: int = 16
    store_buckets: int = 1 << 10
    store_dim: int = 8
    lr: float = 2e-3  # AdamW base rate; 1e-3 until issue 10 left the model under-trained at 2 steps a close
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    batch_size: int = 1024
    steps_per_learn: int = 2  # optimizer steps per close of a bucket of a day or less; per day spanned above
    max_steps_per_learn: int = 16
    recent_fraction: float = 0.5
    replay_capacity: int = 16_384
    replay_add: int = 1024
    count_aware: bool = True
    adaptive_lr: bool = True  # drift control: rate multiplier + quarantine; False = fixed rate
    quarantine: int = 0  # buckets after a detected change whose origins are not learned from (0: off; was 7)
    rate: RateControlConfig = field(default_factory=RateControlConfig)
    forecast_chunk: int = 32_768
    calibrate: bool = True  # online quantile calibration (models/calibration.py)
    calibration_rate: float = 0.2  # its step size per close, scaled units
    calibration_sample: int = 2048  # series whose published forecasts it keeps to calibrate on
    seed: int = 0
    plans: bool = False  # take plans of the target buckets as inputs (models/plan_features.py)
    mean_prior: bool = True  # the mean head corrects the recent mean, not the scale (mean + scale_eps)
    lead_time: bool = True  # a head for the quantiles of the demand summed over steps 1..L (models/lead_time.py)
    service_levels: tuple[float, ...] = DEFAULT_SERVICE_LEVELS  # lead-time levels beyond ``quantiles`` (stock targets)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantiles", check_quantiles(self.quantiles))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "service_levels", check_quantiles(sorted({float(v) for v in self.service_levels}))
                           if self.service_levels else ())
        if not 0.0 < self.recent_fraction <= 1.0 or self.batch_size < 1 or self.steps_per_learn < 0:
            raise ValueError("need 0 < recent_fraction <= 1, batch_size >= 1, steps_per_learn >= 0")
        if self.max_steps_per_learn < self.steps_per_learn:
            raise ValueError("need max_steps_per_learn >= steps_per_learn")

    def steps_for(self, bucket_seconds: int) -> int:
        """Optimizer steps per close: ``steps_per_learn`` per day the bucket spans (at least one day, at most
        ``max_steps_per_learn``), so a year of weekly buckets learns about as much as a year of daily ones.

        >>> cfg = LearnerConfig()
        >>> cfg.steps_for(3_600), cfg.steps_for(86_400), cfg.steps_for(7 * 86_400), cfg.steps_for(28 * 86_400)
        (2, 2, 14, 16)
        """
        days = max(1, round(bucket_seconds / 86_400))
        return min(self.steps_per_learn * days, self.max_steps_per_learn)

    @property
    def lead_quantiles(self) -> tuple[float, ...]:
        """The levels of the lead-time quantiles: ``quantiles`` and ``service_levels`` together (none without
        ``lead_time``).

        >>> LearnerConfig().lead_quantiles, LearnerConfig(lead_time=False).lead_quantiles
        ((0.1, 0.5, 0.9, 0.95, 0.98, 0.99), ())
        """
        return tuple(sorted(set(self.quantiles) | set(self.service_levels))) if self.lead_time else ()

    @property
    def features(self) -> FeatureSpec:
        return FeatureSpec(self.horizon, self.lags, self.aux_lags, self.scale_window, self.scale_eps)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (safe for a weights-only checkpoint)."""
        d = dataclasses.asdict(self)
        for name in ("quantiles", "betas", "service_levels"):
            d[name] = list(getattr(self, name))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LearnerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown learner config fields: {sorted(unknown)}")
        values = dict(d)
        if "rate" in values:
            values["rate"] = RateControlConfig(**values["rate"])
        for name in ("quantiles", "betas", "service_levels"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def check_format(state: object) -> None:
    """Refuse, saying why, a state this learner cannot resume (an older format has another network)."""
    found = state.get("format") if isinstance(state, dict) else None
    if found == STATE_FORMAT:
        return
    if isinstance(found, str) and found.startswith("tidecast.learner/"):
        raise ValueError(f"not a {STATE_FORMAT} state: a {found} state, written by an older tidecast whose learner "
                         "differs (/3 added the dormancy inputs and the quantile calibration, /4 the day of the month "
                         "and the closings beside each step, /5 the published forecasts it calibrates on, /6 the "
                         "lead-time quantiles' calibration); it cannot be resumed: start the forecaster afresh (delete "
                         "its checkpoint key)")
    raise ValueError(f"not a {STATE_FORMAT} state")
