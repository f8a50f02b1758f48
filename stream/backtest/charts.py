"""PNG charts (matplotlib, headless, imported on use): actuals against the forecast quantiles.

* the demo's chart of published forecasts: :func:`one_step_band` per series, then :func:`quantile_chart`;
* the backtest report's plots: :func:`plot_error_over_time` and :func:`plot_top_series` (of the series
  :func:`top_series` picks).

A band runs from the lowest to the highest quantile around the median (the indices
:func:`~tidecast.models.quantiles.band_indices` gives); bands are keyed and labelled by
:func:`~tidecast.models.quantiles.quantile_label`.

>>> docs = [{"origin_index": 1, "values": [[1.0, 2.0, 4.0], [1.0, 3.0, 5.0]]}]
>>> band = one_step_band(docs, 3)
>>> list(band), band["p50"].tolist()
(['p10', 'p50', 'p90'], [nan, 2.0, nan])
>>> {key: float(values[1]) for key, values in one_step_band(docs, 3, quantiles=(0.05, 0.5, 0.95)).items()}
{'p5': 1.0, 'p50': 2.0, 'p95': 4.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tidecast.models.quantiles import DEFAULT_QUANTILES, band_indices, quantile_label

if TYPE_CHECKING:
    from tidecast.stream.backtest.result import BacktestResult
    from tidecast.stream.backtest.scoring import Trace
    from tidecast.stream.timebuckets import Buckets

TOP_SERIES = 4
"""Series in ``top_series.png``."""


def band_keys(quantiles: Sequence[float]) -> tuple[str, str, str]:
    """The keys of a band: labels of the lowest, the median and the highest quantile."""
    return tuple(quantile_label(quantiles[i]) for i in band_indices(quantiles))  # type: ignore[return-value]


def quantile_chart(path: Path, panels: Sequence[dict], title: str,
                   quantiles: Sequence[float] = DEFAULT_QUANTILES) -> Path:
    """One subplot per entry of ``panels``: ``{"series", "starts" [T] epoch ms, "actual" [T]}`` and the keys of
    :func:`one_step_band` for these ``quantiles`` (``"p10", "p50", "p90"`` [T] by default, NaN where no
    forecast); the band is lowest..highest quantile of the one-step-ahead forecasts, labelled e.g. p10-p90."""
    lo, mid, hi = band_keys(quantiles)
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.8 * len(panels)), sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        days = [datetime.fromtimestamp(ms / 1000, tz=UTC) for ms in panel["starts"]]
        ax.fill_between(days, panel[lo], panel[hi], color="tab:blue", alpha=0.2, label=f"{lo}-{hi}")
        ax.plot(days, panel[mid], color="tab:blue", lw=1.4, label=f"{mid} (one step ahead)")
        ax.plot(days, panel["actual"], color="black", lw=1.0, marker=".", ms=3, label="actual units")
        ax.set_title(panel["series"], fontsize=10, loc="left")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize=8, ncols=3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def one_step_band(docs: Sequence[dict], n_buckets: int,
                  quantiles: Sequence[float] = DEFAULT_QUANTILES) -> dict[str, np.ndarray]:
    """Lowest, median and highest quantile of step 1 per bucket column, from forecast docs of one series
    (``origin_index`` set, ``values`` [H][Q] over ``quantiles``), keyed by :func:`band_keys`."""
    keys, columns = band_keys(quantiles), band_indices(quantiles)
    band = {key: np.full(n_buckets, np.nan) for key in keys}
    for doc in docs:
        column = doc["origin_index"]
        if 0 <= column < n_buckets:
            row = doc["values"][0]
            if len(row) != len(quantiles):
                raise ValueError(f"a forecast has {len(row)} quantiles, not the {len(quantiles)} of "
                                 f"quantiles={tuple(quantiles)}: pass the forecaster's quantiles")
            for key, i in zip(keys, columns, strict=True):
                band[key][column] = row[i]
    return band


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
    from tidecast.stream.backtest.config import TIDECAST  # config imports the learner (torch): not at module import

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

    >>> from tidecast.stream.backtest.scoring import Trace
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
    """``top_series.png``: actuals, tidecast's one-step lowest, median and highest quantiles and mean of the
    highest-revenue series (see :func:`top_series`); the y axis is cut above the 99.5th percentile, cut-off
    actuals drawn as ^."""
    tr = result.trace
    if tr is None or len(tr.buckets) < 2 or tr.revenue.size == 0:
        return None
    plt = _pyplot()
    top = top_series(tr, min_active=2 * result.config.horizon)
    quantiles = result.config.quantiles
    columns = band_indices(quantiles)
    band = "-".join(quantile_label(quantiles[j])[1:] for j in (columns[0], columns[2])) + "%"  # "10-90%"
    fig, axes = plt.subplots(len(top), 1, figsize=(10, 2.6 * len(top)), squeeze=False, sharex=True)
    dates = _dates(result.config.buckets, tr.buckets)
    for ax, i in zip(axes[:, 0], top, strict=True):
        actual = np.array([u[i] if i < u.size else np.nan for u in tr.units])
        width = next(s.shape[1] for s in reversed(tr.step1) if s is not None)
        q = np.full((len(tr.buckets), width), np.nan)
        mean = np.full(len(tr.buckets), np.nan)
        for k in range(1, len(tr.buckets)):  # the forecast for bucket k was issued at the close of k-1
            prev = tr.step1[k - 1]
            if prev is not None and i < prev.shape[0]:
                q[k] = prev[i]
                step1_mean = tr.step1_mean[k - 1] if k - 1 < len(tr.step1_mean) else None
                if step1_mean is not None:
                    mean[k] = step1_mean[i]
        lo, mid, hi = (q[:, j] for j in columns)
        finite = np.concatenate([actual[np.isfinite(actual)], hi[np.isfinite(hi)]])
        top_y = max(1.0, float(np.percentile(finite, 99.5)) * 1.15) if finite.size else 1.0
        ax.fill_between(dates, lo, hi, alpha=0.3, step="mid", label=f"tidecast {band}")
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


def plot_stock_curve(result: BacktestResult, folder: Path) -> Path | None:
    """``stock_curve.png`` (``--simulate``): per model, average stock on hand against the fill rate reached, one
    point per service level: the lower a curve lies at a fill rate, the less stock that model needed for it."""
    if not result.inventory:
        return None
    from tidecast.stream.backtest.config import TIDECAST

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, rows in result.inventory.items():
        fill = [row["fill_rate"] for row in rows]
        stock = [row["avg_stock"] for row in rows]
        ax.plot(fill, stock, marker="o", label=name, linewidth=2.2 if name == TIDECAST else 1.0)
        if name == TIDECAST:
            for row in rows:
                ax.annotate(f"{row['service']:g}", (row["fill_rate"], row["avg_stock"]), fontsize=8,
                            textcoords="offset points", xytext=(4, -10))
    policy = result.config.simulate
    ax.set_title("Stock held against fill rate" + (f" (lead {policy.lead}, review {policy.review})" if policy else ""))
    ax.set_xlabel("fill rate (units served / units demanded)")
    ax.set_ylabel("average stock on hand (units per series and bucket)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path = folder / "stock_curve.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
