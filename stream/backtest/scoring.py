"""Scoring every model at each bucket close: :class:`Lineup`, and the :class:`Trace` kept for the report's plots.

A :class:`Lineup` runs in this process or, for baselines, in a worker process
(:class:`~tidecast.stream.backtest.workers.BaselineWorker`); the scores are computed by this code either way.
See :mod:`tidecast.stream.backtest.engine` for the protocol (steps 1 to 4 at the close of each bucket).

>>> import numpy as np
>>> from tidecast.stream.backtest.config import BacktestConfig
>>> lineup = Lineup(BacktestConfig(horizon=1, warmup=0), first_bucket=0, baselines=("naive",), with_tidecast=False)
>>> for t, units in enumerate(([1.0, 0.0], [2.0, 1.0], [3.0, 1.0])):
...     lineup.close_bucket(t, np.array(units), np.zeros(2))
>>> naive = lineup.outcome()["models"]["naive"]
>>> naive["scored"], naive["mae"]  # origins 1 and 2 (bucket 3 never closes), two series
(4, 0.75)
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tidecast.models.baselines import StreamingBaseline, make_baseline
from tidecast.models.metrics import RunningScales, Scorer
from tidecast.models.quantiles import median_index
from tidecast.models.weights import RunningSales
from tidecast.stream.backtest.config import (
    LIGHTGBM_REFIT,
    TIDECAST,
    BacktestConfig,
)
from tidecast.stream.backtest.inventory import InventoryReplay, SafetyStock


@dataclass
class Trace:
    """Per bucket: every series' units and tidecast's one-step quantiles and mean for it (report plots)."""

    buckets: list[int] = field(default_factory=list)
    units: list[np.ndarray] = field(default_factory=list)
    step1: list[np.ndarray | None] = field(default_factory=list)
    revenue: np.ndarray = field(default_factory=lambda: np.zeros(0))
    step1_mean: list[np.ndarray | None] = field(default_factory=list)


class Lineup:
    """Models scored in one process: optionally tidecast (its forecasts come from the forecaster) plus some
    baselines (updated here); steps 1 to 4 of the engine's docstring, one :meth:`close_bucket` per bucket."""

    def __init__(
        self, config: BacktestConfig, first_bucket: int, baselines: Sequence[str], with_tidecast: bool = True
    ) -> None:
        self.config = config
        self.first_scored = first_bucket + 1 + config.warmup_origins
        buckets = config.buckets
        self.baselines: dict[str, StreamingBaseline] = {}
        for name in baselines:
            extra: dict = {}
            if name == "lightgbm":
                extra = {
                    "refit_every": LIGHTGBM_REFIT,
                    "start_epoch": buckets.start_ms(first_bucket) // 1000,
                    "bucket_seconds": config.bucket_seconds,
                    "seed": config.seed,
                }
            self.baselines[name] = make_baseline(name, config.season, tuple(config.quantiles), config.horizon, **extra)
        self.names = [TIDECAST] * with_tidecast + list(self.baselines)
        self.scorers = {name: Scorer(config.horizon, tuple(config.quantiles)) for name in self.names}
        self.scales = RunningScales()
        self.sales = RunningSales(config.weight_window)
        self.weight_basis: set[str] = set()
        self.mid = median_index(config.quantiles)
        self.timings: dict[str, float] = defaultdict(float)
        self.issued: list[int] = []
        self.unpublished = 0
        self.timeline: dict[str, list[tuple[int, float]]] = {name: [] for name in self.names}
        self._step1: dict[str, np.ndarray] = {}
        self.trace = Trace() if config.trace and with_tidecast else None
        self.forecasts: dict[str, dict[int, np.ndarray]] | None = (
            {name: {} for name in self.names} if config.keep_forecasts else None
        )
        policy = config.simulate
        self.inventory = None if policy is None else InventoryReplay(policy, self.names)
        self.safety = {} if policy is None else {name: SafetyStock(policy.protection, policy.services)
                                                 for name in self.names}
        self._lead_at = None if policy is None or not with_tidecast else [
            config.learner_config().lead_quantiles.index(s) for s in policy.services]
        self.last_t: int | None = None

    def close_bucket(
        self,
        t: int,
        units: np.ndarray,
        revenue: np.ndarray,
        tidecast: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        plans: np.ndarray | None = None,
        lead: np.ndarray | None = None,
    ) -> None:
        """Bucket ``t`` closed with ``units`` and ``revenue`` [S]; ``tidecast`` = (published rows, quantiles
        [n, H, Q], means [n, H]); ``plans`` [S, H, 8] of ``t+1 .. t+H`` known now (``--known``; every baseline
        gets them, see :mod:`tidecast.models.baselines.known`); ``lead``: tidecast's lead-time quantiles
        [n, H, QL] of the published rows (the stock targets of ``--simulate``)."""
        cfg = self.config
        n = units.size
        started = time.perf_counter()
        for name, scorer in self.scorers.items():
            scorer.observe(t, units)
            prev = self._step1.pop(name, None)
            if prev is not None:
                self.timeline[name].append((t, float(np.mean(np.abs(prev - units[: prev.size])))))
        self.scales.update(units)
        s1, s2 = self.scales.scales()
        self.sales.update(units, revenue)
        self.timings["scoring"] += time.perf_counter() - started

        origin = t + 1
        scored = origin >= self.first_scored
        forecasts: dict[str, np.ndarray] = {}
        means: dict[str, np.ndarray] = {}
        if tidecast is not None:
            started = time.perf_counter()
            published, values, mean = tidecast
            tide = forecasts[TIDECAST] = np.zeros((n, cfg.horizon, len(cfg.quantiles)))
            tide[published] = values
            tide_mean = means[TIDECAST] = np.zeros((n, cfg.horizon))
            tide_mean[published] = mean
            self.unpublished += n - published.size if scored else 0
            self.timings[TIDECAST] += time.perf_counter() - started
        for name, model in self.baselines.items():
            started = time.perf_counter()
            if plans is None:
                model.update(units)
            else:
                model.update(units, plans=plans, revenue=revenue)
            forecasts[name] = model.forecast()
            means[name] = model.point_forecast()
            self.timings[name] += time.perf_counter() - started

        if scored:
            started = time.perf_counter()
            self.issued.append(origin)
            weights, basis = self.sales.weights()
            self.weight_basis.add(basis)
            for name, f in forecasts.items():
                self.scorers[name].issue(origin, f, s1, s2, means=means[name], weights=weights)
                self._step1[name] = f[:, 0, self.mid].copy()
            self.timings["scoring"] += time.perf_counter() - started
        if self.forecasts is not None:
            for name, f in forecasts.items():
                self.forecasts[name][origin] = f.copy()
        if self.inventory is not None:
            started = time.perf_counter()
            self._replenish(t, units, means, scored, None if tidecast is None else tidecast[0], lead)
            self.timings["inventory"] += time.perf_counter() - started
        self.last_t = t
        if self.trace is not None and TIDECAST in forecasts:
            tr = self.trace
            tr.buckets.append(t)
            tr.units.append(units.astype(np.float32))
            tr.step1.append(forecasts[TIDECAST][:, 0, :].astype(np.float32))
            tr.step1_mean.append(means[TIDECAST][:, 0].astype(np.float32))
            tr.revenue = np.concatenate([tr.revenue, np.zeros(n - tr.revenue.size)]) + revenue

    def _replenish(self, t: int, units: np.ndarray, means: dict[str, np.ndarray], scored: bool,
                   published: np.ndarray | None, lead: np.ndarray | None) -> None:
        """Every model's order-up-to levels from the forecasts of this close, onto the shelves
        (:mod:`tidecast.stream.backtest.inventory`)."""
        assert self.inventory is not None
        protection = self.inventory.policy.protection
        levels = {}
        for name, mean in means.items():
            if name == TIDECAST and lead is not None and published is not None and self._lead_at is not None:
                levels[name] = np.zeros((len(units), len(self._lead_at)))
                levels[name][published] = lead[:, protection - 1, self._lead_at]
            else:  # a baseline, or a tidecast learner without the lead-time head
                self.safety[name].observe(t, units)
                levels[name] = self.safety[name].levels(t, mean[:, :protection].sum(axis=1))
        self.inventory.close(t, units, levels, scored)

    def outcome(self) -> dict:
        """Picklable results: metrics per model, timings, timeline, issued origins, kept forecasts."""
        return {
            "models": {name: scorer.result() for name, scorer in self.scorers.items()},
            "timings": dict(self.timings),
            "timeline": self.timeline,
            "issued": self.issued,
            "weight_basis": sorted(self.weight_basis),
            "unpublished": self.unpublished,
            "forecasts": self.forecasts,
            "inventory": None if self.inventory is None or self.last_t is None else self.inventory.outcome(
                self.last_t + 1),
        }
