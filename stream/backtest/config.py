"""What a backtest runs: :class:`BacktestConfig` and the engine's constants.

>>> BacktestConfig(horizon=7).warmup_origins, BacktestConfig(bucket_seconds=604_800).season
(14, 52)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tidecast.models.baselines import BASELINE_NAMES
from tidecast.models.quantiles import DEFAULT_QUANTILES
from tidecast.models.replenishment import Policy
from tidecast.models.weights import DEFAULT_WEIGHT_WINDOW
from tidecast.stream.events import DEFAULT_BOUNDS, Bounds
from tidecast.stream.timebuckets import Buckets, season_for

if TYPE_CHECKING:  # the learner (torch) is imported when a config asks for it, not with the constants
    from tidecast.models.learner import LearnerConfig

TOPIC = "backtest.sales"
"""The one simulated input partition (partition 0)."""
PLANS_TOPIC = "backtest.plans"
"""The simulated plans partition (partition 0) of ``--known``."""
TIDECAST = "tidecast"
DEFAULT_BASELINES: tuple[str, ...] = tuple(name for name in BASELINE_NAMES if name != "lightgbm")
"""Every baseline except the optional LightGBM anchor."""
LIGHTGBM_REFIT = 28
GC_THRESHOLDS = (50_000, 20, 100)


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """What to run. ``warmup`` None means ``2 * horizon`` origins; ``learner`` None means the live defaults
    (:class:`LearnerConfig` with this horizon, quantiles and seed)."""

    bucket_seconds: int = 86_400
    horizon: int = 14
    warmup: int | None = None
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    lateness_seconds: int = 7_200
    retention: int = 56
    seed: int = 0
    weight_window: int = DEFAULT_WEIGHT_WINDOW
    """Buckets of sales before each origin that weigh the series in WRMSSE and WSPL (M5: 28 days)."""
    learner: LearnerConfig | None = None
    trace: bool = False
    """Keep tidecast's one-step quantiles and the units of every series for the report's plots."""
    keep_forecasts: bool = False
    """Keep every model's forecasts by origin (small inputs only: tests)."""
    workers: int = 0
    """Worker processes sharing the baselines with this one (0: all in this process)."""
    bounds: Bounds = DEFAULT_BOUNDS
    """The validator's bounds on qty and price (``TIDECAST_MAX_QTY``, ``TIDECAST_MAX_PRICE``), as live."""
    forecasts: Path | None = None
    """Write every scored forecast of every model to this file (``.csv.gz``, ``.csv`` or ``.parquet``; see
    :mod:`tidecast.stream.backtest.forecast_file`)."""
    known: tuple[str, ...] = ()
    """File fields known ahead (``--known``: promo, price, open, event): replayed as plan events H buckets before
    their bucket (:mod:`tidecast.stream.backtest.known_plans`), and the model takes plans as inputs."""
    shards: int = 1
    """Replay ``tidecast forecast --shard I/N`` with N = ``shards``: one model per shard, each learning from and
    forecasting its own series (:class:`~tidecast.stream.sharded_learner.ShardedLearner`)."""
    partitions: int = 12
    """The input topics' partition count (``TIDECAST_PARTITIONS``), which deals the series to the shards."""
    simulate: Policy | None = None
    """Replay a replenishment policy on every model's stock targets (``--simulate``;
    :mod:`tidecast.stream.backtest.inventory`); its service levels join the learner's lead-time levels."""
    max_rejected: float | None = None
    """Stop with :class:`~tidecast.stream.backtest.rejects.TooManyRejected` when a larger share of the rows is
    rejected (invalid or late); None: never (the command's ``--max-rejected`` defaults to 0.05)."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.baselines if name not in BASELINE_NAMES]
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINE_NAMES)}")
        if self.horizon < 1 or (self.warmup is not None and self.warmup < 0):
            raise ValueError("horizon must be >= 1 and warmup >= 0")
        if self.weight_window < 1:
            raise ValueError(f"the weight window must be at least 1 bucket, got {self.weight_window}")
        if not 1 <= self.shards <= self.partitions:
            raise ValueError(f"shards must be from 1 to the partition count ({self.partitions}), got {self.shards}")
        if self.max_rejected is not None and not 0.0 <= self.max_rejected <= 1.0:
            raise ValueError(f"the share of rejected rows allowed must be within 0 and 1, got {self.max_rejected}")
        if self.learner is not None and (self.learner.horizon, self.learner.quantiles) != (
            self.horizon,
            tuple(self.quantiles),
        ):
            raise ValueError("the learner config must have the backtest's horizon and quantiles")
        if self.simulate is not None:
            if self.simulate.protection > self.horizon:
                raise ValueError(f"--simulate needs lead + review ({self.simulate.protection} buckets) within the "
                                 f"horizon ({self.horizon}): the targets are read from the forecast")
            if self.learner is not None and not set(self.simulate.services) <= set(self.learner.lead_quantiles):
                raise ValueError("the learner config must learn the simulated service levels as lead-time quantiles")

    @property
    def buckets(self) -> Buckets:
        return Buckets(self.bucket_seconds)

    @property
    def warmup_origins(self) -> int:
        return 2 * self.horizon if self.warmup is None else self.warmup

    @property
    def season(self) -> int:
        return season_for(self.bucket_seconds)

    def learner_config(self) -> LearnerConfig:
        from tidecast.models.learner import LearnerConfig
        from tidecast.models.learner_config import DEFAULT_SERVICE_LEVELS

        if self.learner is not None:
            return self.learner
        services = set(DEFAULT_SERVICE_LEVELS) | set(self.simulate.services if self.simulate else ())
        return LearnerConfig(horizon=self.horizon, quantiles=tuple(self.quantiles), seed=self.seed,
                             plans=bool(self.known), service_levels=tuple(sorted(services)))
