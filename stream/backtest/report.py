"""What a backtest shows: the ``--json`` object, the Markdown tables, ``metrics.json``, and the plots of
:mod:`tidecast.stream.backtest.charts`.

>>> from tidecast.stream.backtest.config import BacktestConfig
>>> from tidecast.stream.backtest.result import BacktestResult
>>> r = BacktestResult(BacktestConfig(horizon=2), 1, ["all:A"], 3, 100, 104, 0.5,
...                    {"tidecast": {"mae": 1.0, "rmse": 1.5, "mase": float("nan"), "rmsse": 1.0, "wrmsse": 1.0,
...                                  "wspl": 0.2, "coverage80": 0.8, "bias": -0.1, "per_horizon": []}},
...                    {"learn": 0.25}, {"rows": 9}, {})
>>> doc = summary(r)
>>> doc["models"]["tidecast"]["mase"], doc["series"], doc["origins"], doc["bucket_seconds"]
(None, 1, 3, 86400)
>>> print(overall_table(r))
| model | MAE | RMSE | MASE | RMSSE | WRMSSE | WSPL | coverage80 | bias |
|---|---|---|---|---|---|---|---|---|
| tidecast | 1.000 | 1.500 | - | 1.000 | 1.000 | 0.200 | 0.800 | -0.100 |
>>> c = {"wrmsse": {"best_baseline": "tsb", "tidecast": 0.9, "baseline": 1.0, "mean_diff": -0.1,
...                 "ci95": [-0.15, -0.05], "origins": 300, "block": 14, "verdict": "tidecast ahead"}}
>>> print(comparison_table(c))
| metric | best baseline | tidecast | baseline | mean diff | 95% interval | verdict |
|---|---|---|---|---|---|---|
| WRMSSE | tsb | 0.900 | 1.000 | -0.100 | [-0.150, -0.050] | tidecast ahead |
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tidecast.stream.backtest.charts import plot_error_over_time, plot_stock_curve, plot_top_series
from tidecast.stream.backtest.comparison import COMPARED, SNAIVE, ratios_to_snaive
from tidecast.stream.backtest.inventory import stock_at_same_fill
from tidecast.stream.backtest.result import BacktestResult
from tidecast.stream.timebuckets import format_duration, to_iso

REPORT_METRICS: tuple[str, ...] = ("mae", "rmse", "mase", "rmsse", "wrmsse", "wspl", "coverage80", "bias")
"""The metrics of ``--json`` and of the tables, in that order (not the window metrics,
:data:`tidecast.stream.windows.METRICS`)."""
HEADERS = {"mae": "MAE", "rmse": "RMSE", "mase": "MASE", "rmsse": "RMSSE", "wrmsse": "WRMSSE", "wspl": "WSPL",
           "coverage80": "coverage80", "bias": "bias"}


def _clean(value: Any) -> Any:
    """NaN and inf become None (JSON has no NaN); containers are cleaned recursively."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def summary(result: BacktestResult) -> dict:
    """The ``--json`` object: the issue's keys (each model's metrics, with ``ratio_to_snaive`` when seasonal
    naive ran), ``comparison`` (tidecast against the best baseline per metric), ``weights`` (window and
    basis of the WRMSSE/WSPL weights), then ``warmup``, ``buckets``, ``counts``, ``rejects`` (the top
    reasons for rejected rows with their counts) and ``timings``."""
    cfg = result.config
    ratios = ratios_to_snaive(result.models)
    models = {name: {k: m.get(k) for k in REPORT_METRICS} for name, m in result.models.items()}
    for name, row in models.items():
        if name in ratios:
            row["ratio_to_snaive"] = ratios[name]
    doc = {
        "series": result.series,
        "origins": result.origins,
        "bucket_seconds": cfg.bucket_seconds,
        "horizon": cfg.horizon,
        "seconds": round(result.seconds, 3),
        "models": models,
        "comparison": result.comparison,
        "weights": {"window": cfg.weight_window, "basis": result.weight_basis},
        "warmup": cfg.warmup_origins,
        "buckets": _span(result),
        "counts": result.counts,
        "rejects": result.rejects.as_json(),
        "timings": {k: round(v, 3) for k, v in sorted(result.timings.items(), key=lambda kv: -kv[1])},
    }
    if result.lead_time is not None:
        doc["lead_time"] = result.lead_time
    if result.inventory is not None and cfg.simulate is not None:
        doc["policy"] = {"lead": cfg.simulate.lead, "review": cfg.simulate.review,
                         "services": list(cfg.simulate.services)}
        doc["inventory"] = result.inventory
        doc["stock_at_same_fill"] = stock_at_same_fill(result.inventory)
    return _clean(doc)


def _span(result: BacktestResult) -> dict:
    if result.first_bucket is None or result.last_bucket is None:
        return {"first": None, "last": None, "count": 0}
    b = result.config.buckets
    return {"first": to_iso(b.start_ms(result.first_bucket)), "last": to_iso(b.start_ms(result.last_bucket)),
            "count": result.last_bucket - result.first_bucket + 1}


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.3f}"


def overall_table(result: BacktestResult) -> str:
    """Markdown: one row per model, the eight metrics (means over origins)."""
    lines = ["| model | " + " | ".join(HEADERS[k] for k in REPORT_METRICS) + " |",
             "|---" * (len(REPORT_METRICS) + 1) + "|"]
    for name, m in result.models.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in REPORT_METRICS) + " |")
    return "\n".join(lines)


def ratio_table(result: BacktestResult) -> str:
    """Markdown: one row per model, each error metric as a ratio to seasonal naive ('' without it)."""
    ratios = ratios_to_snaive(result.models)
    if not ratios:
        return ""
    lines = ["| model | " + " | ".join(HEADERS[k] for k in COMPARED) + " |", "|---" * (len(COMPARED) + 1) + "|"]
    for name, row in ratios.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row[k]) for k in COMPARED) + " |")
    return "\n".join(lines)


def comparison_table(comparison: dict[str, dict]) -> str:
    """Markdown: per metric, tidecast against the best baseline (mean difference over origins, 95% interval)."""
    lines = ["| metric | best baseline | tidecast | baseline | mean diff | 95% interval | verdict |",
             "|---|---|---|---|---|---|---|"]
    for metric, c in comparison.items():
        lo, hi = c["ci95"]
        lines.append(f"| {HEADERS[metric]} | {c['best_baseline']} | {_fmt(c['tidecast'])} | {_fmt(c['baseline'])} | "
                     f"{_fmt(c['mean_diff'])} | [{_fmt(lo)}, {_fmt(hi)}] | {c['verdict']} |")
    return "\n".join(lines)


def horizon_tables(result: BacktestResult, metrics: tuple[str, ...] = REPORT_METRICS) -> str:
    """Markdown: per metric, one row per horizon step and one column per model."""
    names = list(result.models)
    out = []
    for metric in metrics:
        out += [f"#### {HEADERS[metric]} by horizon step", "",
                "| step | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for h in range(result.config.horizon):
            cells = [_fmt(_step(result.models[n], h).get(metric)) for n in names]
            out.append(f"| {h + 1} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _step(model: dict, h: int) -> dict:
    rows = model.get("per_horizon") or []
    return rows[h] if h < len(rows) else {}


def inventory_table(inventory: dict[str, list[dict]]) -> str:
    """Markdown: one row per (model, service level) of the replenishment replay, with the stock tidecast
    holds at the same fill rate (:func:`~tidecast.stream.backtest.inventory.stock_at_same_fill`)."""
    same = stock_at_same_fill(inventory)
    lines = ["| model | service | fill rate | cycle service | avg stock | stock-outs "
             "| tidecast's stock at this fill rate | ratio |", "|---" * 8 + "|"]
    for name, rows in inventory.items():
        matched = same.get(name, [{}] * len(rows))
        lines += [f"| {name} | {row['service']:g} | {_fmt(row['fill_rate'])} | {_fmt(row['cycle_service'])} | "
                  f"{_fmt(row['avg_stock'])} | {row['stockouts']:,} | {_fmt(m.get('tidecast_stock'))} | "
                  f"{_fmt(m.get('ratio'))} |" for row, m in zip(rows, matched, strict=True)]
    return "\n".join(lines)


def timings_table(result: BacktestResult) -> str:
    """Markdown: seconds per stage, largest first (summed over processes when baselines run in workers)."""
    lines = ["| stage | seconds |", "|---|---|"]
    for stage, seconds in sorted(result.timings.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {stage} | {seconds:.2f} |")
    return "\n".join(lines)


def markdown(result: BacktestResult, title: str = "Backtest", plots: list[str] | None = None) -> str:
    """The whole ``report.md``."""
    cfg = result.config
    span = _span(result)
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    parts = [
        f"# {title}", "",
        f"{result.series:,} series, buckets of {format_duration(cfg.bucket_seconds)} from {span['first']} to "
        f"{span['last']} ({span['count']} buckets), horizon {cfg.horizon}, {result.origins} scored origins after "
        f"a warm-up of {cfg.warmup_origins}, seed {cfg.seed}; {result.seconds:.1f} s.", "",
        f"Input: {counts}.", "",
        "## Overall", "",
        "Every metric is computed per forecast origin, per series over its H steps and then over the series "
        f"(WRMSSE and WSPL: weighted by each series' {' or '.join(result.weight_basis) or 'revenue'} over the "
        f"{cfg.weight_window} buckets before the origin, as M5), and the figure is the mean over origins. MAE "
        "and MASE score each model's median, RMSE, RMSSE, WRMSSE and bias its mean (a baseline's point "
        "forecast). See docs/metrics.md.", "",
        overall_table(result), "",
        *(["### Ratio to seasonal naive", "", ratio_table(result), ""] if SNAIVE in result.models else []),
        *(["### tidecast against the best baseline", "",
           "Mean over origins of tidecast minus the baseline with the best figure (negative: tidecast ahead); "
           "95% interval by a moving-block bootstrap over origins (block max(H, ceil(origins^(1/3))), 2000 "
           "resamples, seed 0). An interval that holds 0 is a tie.", "",
           comparison_table(result.comparison), ""] if result.comparison else []),
        "## Per horizon step", "",
        horizon_tables(result),
        *(["## Replenishment", "",
            f"A periodic-review order-up-to policy (lead {cfg.simulate.lead}, review {cfg.simulate.review} "
            "buckets, lost sales) replayed on the actual demand with each model's stock targets: tidecast's "
            "lead-time quantiles; a baseline's point forecast summed over the protection period plus the "
            "service quantile of its own past errors of such sums. The last two columns read tidecast's curve of "
            "stock against fill rate (linear between its service levels) at each baseline's fill rate: a ratio "
            "below 1 means tidecast needs less stock for the same fill rate; '-' is outside the fill rates "
            "tidecast's levels reached. See docs/decisions.md.", "",
            inventory_table(result.inventory), ""] if result.inventory and cfg.simulate else []),
        "## Time per stage", "",
        "Seconds, summed over processes: with baseline worker processes the stages add up to more than the run.",
        "",
        timings_table(result), "",
    ]
    for plot in plots or []:
        parts += [f"![{plot}]({plot})", ""]
    return "\n".join(parts)


def write_report(result: BacktestResult, folder: Path, title: str = "Backtest") -> list[Path]:
    """Write ``report.md``, ``metrics.json`` and the PNG plots into ``folder``; returns the paths written.

    The plots need matplotlib (the ``bench`` extra); without it the report says so and has no plots.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    metrics = {**summary(result), "models": _clean(result.models)}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    written.append(folder / "metrics.json")
    try:
        plots = [p.name for p in (plot_error_over_time(result, folder), plot_top_series(result, folder),
                                  plot_stock_curve(result, folder)) if p]
    except ImportError:
        plots = []
        title += " (plots skipped: matplotlib is not installed)"
    written += [folder / name for name in plots]
    (folder / "report.md").write_text(markdown(result, title, plots))
    written.append(folder / "report.md")
    return written
