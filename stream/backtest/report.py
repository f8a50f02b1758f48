"""What a backtest shows: the ``--json`` object, the Markdown tables, ``metrics.json`` and the plots.

>>> from tidecast.stream.backtest.engine import BacktestConfig, BacktestResult
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
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tidecast.stream.backtest.engine import TIDECAST, BacktestResult, Trace
from tidecast.stream.timebuckets import Buckets, format_duration, to_iso

METRICS: tuple[str, ...] = ("mae", "rmse", "mase", "rmsse", "wrmsse", "wspl", "coverage80", "bias")
"""The metrics of ``--json`` and of the tables, in that order."""
HEADERS = {"mae": "MAE", "rmse": "RMSE", "mase": "MASE", "rmsse": "RMSSE", "wrmsse": "WRMSSE", "wspl": "WSPL",
           "coverage80": "coverage80", "bias": "bias"}
TOP_SERIES = 4


def _clean(value: object) -> object:
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
    """The ``--json`` object: the issue's keys, then ``warmup``, ``buckets``, ``counts`` and ``timings``."""
    cfg = result.config
    doc = {
        "series": result.series,
        "origins": result.origins,
        "bucket_seconds": cfg.bucket_seconds,
        "horizon": cfg.horizon,
        "seconds": round(result.seconds, 3),
        "models": {name: {k: m.get(k) for k in METRICS} for name, m in result.models.items()},
        "warmup": cfg.warmup_origins,
        "buckets": _span(result),
        "counts": result.counts,
        "timings": {k: round(v, 3) for k, v in sorted(result.timings.items(), key=lambda kv: -kv[1])},
    }
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
    """Markdown: one row per model, the eight metrics over every scored point."""
    lines = ["| model | " + " | ".join(HEADERS[k] for k in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, m in result.models.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in METRICS) + " |")
    return "\n".join(lines)


def horizon_tables(result: BacktestResult, metrics: tuple[str, ...] = METRICS) -> str:
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
        "Every metric is computed per series over all its scored points, then averaged over series (WRMSSE and "
        "WSPL: weighted by revenue share). MAE and MASE score each model's median, RMSE, RMSSE, WRMSSE and bias "
        "its mean (a baseline's point forecast). See docs/metrics.md.", "",
        overall_table(result), "",
        "## Per horizon step", "",
        horizon_tables(result),
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
        plots = [p.name for p in (plot_error_over_time(result, folder), plot_top_series(result, folder)) if p]
    except ImportError:
        plots = []
        title += " (plots skipped: matplotlib is not installed)"
    written += [folder / name for name in plots]
    (folder / "report.md").write_text(markdown(result, title, plots))
    written.append(folder / "report.md")
    return written


def _pyplot():  # matplotlib is optional: imported on use
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _dates(buckets: Buckets, indices: list[int]) -> list:
    return np.array([buckets.start_ms(i) for i in indices], dtype="datetime64[ms]").tolist()


def plot_error_over_time(result: BacktestResult, folder: Path) -> Path | None:
    """``error_over_time.png``: per model, the one-step-ahead MAE over all series per bucket (7-bucket mean)."""
    if not any(result.timeline.values()):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    buckets = result.config.buckets
    for name, points in result.timeline.items():
        if not points:
            continue
        t, err = zip(*points, strict=True)
        smooth = np.convolve(err, np.ones(7) / 7, mode="valid") if len(err) >= 7 else np.asarray(err)
        ax.plot(_dates(buckets, list(t[len(t) - len(smooth):])), smooth, label=name,
                linewidth=2.2 if name == TIDECAST else 1.0)
    ax.set_title("One-step-ahead MAE per bucket (mean over series, 7-bucket rolling mean)")
    ax.set_ylabel("MAE (units)")
    ax.legend(ncol=4, fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    path = folder / "error_over_time.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def top_series(trace: Trace, n: int = TOP_SERIES, min_active: int = 28) -> list[int]:
    """Indices of the ``n`` highest-revenue series among those that sold in at least ``min_active`` buckets
    (all series if too few do: a one-off bulk order makes a high-revenue but unreadable plot).

    >>> tr = Trace([0, 1, 2], [np.array([1.0, 5.0, 0.0]), np.array([1.0, 0.0, 2.0]), np.array([1.0, 0.0, 2.0])],
    ...            [None, None, None], np.array([3.0, 500.0, 8.0]))
    >>> top_series(tr, n=2, min_active=2)
    [2, 0]
    """
    active = np.zeros(trace.revenue.size)
    for units in trace.units:
        active[: units.size] += units > 0
    ok = np.flatnonzero(active >= min_active)
    if ok.size < n:
        ok = np.arange(trace.revenue.size)
    return ok[np.argsort(-trace.revenue[ok], kind="stable")][:n].tolist()


def plot_top_series(result: BacktestResult, folder: Path) -> Path | None:
    """``top_series.png``: actuals, tidecast's one-step 10/50/90% quantiles and mean of the highest-revenue series
    (see :func:`top_series`); the y axis is cut above the 99.5th percentile, cut-off actuals drawn as ^."""
    tr = result.trace
    if tr is None or len(tr.buckets) < 2 or tr.revenue.size == 0:
        return None
    plt = _pyplot()
    top = top_series(tr, min_active=2 * result.config.horizon)
    fig, axes = plt.subplots(len(top), 1, figsize=(10, 2.6 * len(top)), squeeze=False, sharex=True)
    dates = _dates(result.config.buckets, tr.buckets)
    for ax, i in zip(axes[:, 0], top, strict=True):
        actual = np.array([u[i] if i < u.size else np.nan for u in tr.units])
        q = np.full((len(tr.buckets), tr.step1[-1].shape[1]), np.nan)
        mean = np.full(len(tr.buckets), np.nan)
        for k in range(1, len(tr.buckets)):  # the forecast for bucket k was issued at the close of k-1
            prev = tr.step1[k - 1]
            if prev is not None and i < prev.shape[0]:
                q[k] = prev[i]
                if k - 1 < len(tr.step1_mean):
                    mean[k] = tr.step1_mean[k - 1][i]
        lo, mid, hi = q[:, 0], q[:, q.shape[1] // 2], q[:, -1]
        finite = np.concatenate([actual[np.isfinite(actual)], hi[np.isfinite(hi)]])
        top_y = max(1.0, float(np.percentile(finite, 99.5)) * 1.15) if finite.size else 1.0
        ax.fill_between(dates, lo, hi, alpha=0.3, step="mid", label="tidecast 10-90%")
        ax.plot(dates, mid, drawstyle="steps-mid", linewidth=1.0, label="tidecast median")
        if np.isfinite(mean).any():
            ax.plot(dates, mean, drawstyle="steps-mid", linewidth=1.0, linestyle="--", label="tidecast mean")
        ax.plot(dates, np.where(actual <= top_y, actual, np.nan), ".", markersize=3, color="black", label="actual")
        over = actual > top_y
        if over.any():
            ax.plot(np.array(dates)[over].tolist(), np.full(int(over.sum()), top_y * 0.97), "^", color="red",
                    markersize=4, label="actual above the axis")
        ax.set_ylim(0, top_y)
        ax.set_title(f"{result.series_names[i]} (revenue {tr.revenue[i]:,.0f})", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=5)
    fig.autofmt_xdate()
    path = folder / "top_series.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
