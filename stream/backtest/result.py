"""What a backtest run produced: :class:`BacktestResult`, put together by :func:`assemble_result`.

Every :class:`~tidecast.stream.backtest.scoring.Lineup` (this process's, and one per worker process) hands
over an outcome (:meth:`~tidecast.stream.backtest.scoring.Lineup.outcome`); the result merges them, models
in config order (tidecast first), with the engine's counts and time per stage, and compares tidecast with
the best baseline per metric (:func:`~tidecast.stream.backtest.comparison.compare`). An origin counts once
all its H buckets closed (``origin + H - 1`` at or before the last bucket): the metrics are computed per
complete origin. :mod:`tidecast.stream.backtest.report` turns the result into JSON,
tables and plots.

>>> import time
>>> from tidecast.stream.series_panel import SeriesPanel
>>> here = {"models": {"tidecast": {"mae": 1.0}}, "timings": {"learn": 0.5}, "timeline": {"tidecast": []},
...         "issued": [3, 4, 5], "unpublished": 2, "forecasts": None}
>>> there = {"models": {"naive": {"mae": 2.0}}, "timings": {"naive": 0.1}, "timeline": {"naive": []},
...          "issued": [3, 4, 5], "unpublished": 0, "forecasts": None}
>>> r = assemble_result(BacktestConfig(horizon=2, baselines=("naive",)), [here, there], SeriesPanel(2), (0, 5),
...                     {"rows": 9}, {"ingest": 0.25}, time.perf_counter())
>>> list(r.models), r.origins, r.counts, sorted(r.timings)
(['tidecast', 'naive'], 2, {'rows': 9, 'unpublished': 2}, ['ingest', 'learn', 'naive', 'other'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tidecast.stream.backtest.comparison import compare
from tidecast.stream.backtest.config import TIDECAST, BacktestConfig
from tidecast.stream.backtest.scoring import Trace
from tidecast.stream.rejects import RejectTally
from tidecast.stream.series_panel import SeriesPanel


@dataclass
class BacktestResult:
    """What a run produced; :mod:`tidecast.stream.backtest.report` turns it into JSON, tables and plots."""

    config: BacktestConfig
    series: int
    series_names: list[str]
    origins: int
    first_bucket: int | None
    last_bucket: int | None
    seconds: float
    models: dict[str, dict]
    timings: dict[str, float]
    counts: dict[str, int]
    timeline: dict[str, list[tuple[int, float]]]
    trace: Trace | None = None
    forecasts: dict[str, dict[int, np.ndarray]] | None = None
    rejects: RejectTally = field(default_factory=RejectTally)
    """Why rows were rejected (invalid or late), by kind of reason."""
    weight_basis: list[str] = field(default_factory=list)
    """What weighed the series in WRMSSE and WSPL: ``["revenue"]``, ``["units"]`` (no price in the window), or both."""
    comparison: dict[str, dict] = field(default_factory=dict)
    """Per metric: tidecast against the best baseline (:func:`~tidecast.stream.backtest.comparison.compare`)."""
    lead_time: dict[str, object] | None = None
    """tidecast's lead-time quantiles scored (:meth:`~tidecast.models.lead_time_coverage.LeadTimeCoverage.as_json`):
    per L = 1..H, ``coverage80`` of the demand summed over L buckets, the ``sums`` scored, and per level the
    ``hit_rate`` at or below its quantile (None when its learner makes none)."""
    inventory: dict[str, list[dict]] | None = None
    """``--simulate``: per model, one entry per service level (``service``, ``fill_rate``, ``cycle_service``,
    ``avg_stock``, ``stockouts``; :mod:`tidecast.stream.backtest.inventory`)."""


def assemble_result(
    config: BacktestConfig,
    outcomes: list[dict],
    panel: SeriesPanel,
    span: tuple[int | None, int | None],
    counts: dict[str, int],
    timings: dict[str, float],
    started: float,
    trace: Trace | None = None,
) -> BacktestResult:
    """Merge the lineups' ``outcomes`` (this process's first) with the engine's ``counts`` and ``timings``.

    ``panel`` is the forecaster's (its series are the result's), ``span`` the first and last bucket seen,
    ``started`` the run's :func:`time.perf_counter` start: the time no stage accounts for is ``other``.
    """
    order = [TIDECAST, *config.baselines]
    found = {name: result for out in outcomes for name, result in out["models"].items()}
    timeline = {name: points for out in outcomes for name, points in out["timeline"].items()}
    timings, seconds = _merged_timings(timings, outcomes, started)
    counts = dict(counts)
    if outcomes:
        counts["unpublished"] = outcomes[0]["unpublished"]
    issued = outcomes[0]["issued"] if outcomes else []
    first, last = span
    kept = [out["forecasts"] for out in outcomes if out["forecasts"] is not None]
    models = {name: found[name] for name in order if name in found}
    return BacktestResult(
        config=config,
        series=len(panel),
        series_names=list(panel.series),
        origins=sum(1 for origin in issued if last is not None and origin + config.horizon - 1 <= last),
        first_bucket=first,
        last_bucket=last,
        seconds=seconds,
        models=models,
        timings=timings,
        counts=counts,
        timeline={name: timeline[name] for name in order if name in timeline},
        trace=trace,
        forecasts={name: f for group in kept for name, f in group.items()} if kept else None,
        weight_basis=sorted({b for out in outcomes for b in out.get("weight_basis", [])}),
        comparison=compare(models, config.horizon),
        inventory=_merged_inventory(order, outcomes) if config.simulate is not None else None,
    )


def _merged_inventory(order: list[str], outcomes: list[dict]) -> dict[str, list[dict]]:
    """The lineups' replenishment outcomes, models in config order."""
    found = {name: rows for out in outcomes for name, rows in (out.get("inventory") or {}).items()}
    return {name: found[name] for name in order if name in found}


def _merged_timings(timings: dict[str, float], outcomes: list[dict], started: float) -> tuple[dict[str, float], float]:
    """Seconds per stage summed over processes, plus ``other``; and the run's wall seconds."""
    merged = dict(timings)
    for out in outcomes:
        for name, seconds in out["timings"].items():
            merged[name] = merged.get(name, 0.0) + seconds
    wall = time.perf_counter() - started
    merged["other"] = max(0.0, wall - sum(merged.values()))
    return merged, wall
