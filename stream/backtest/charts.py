"""PNG charts (matplotlib, headless): actuals against the forecast quantiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def quantile_chart(
    path: Path,
    panels: Sequence[dict],
    title: str,
) -> Path:
    """One subplot per entry of ``panels``: ``{"series", "starts" [T] epoch ms, "actual" [T], "p10", "p50",
    "p90" [T] (NaN where no forecast)}``; the band is p10..p90 of the one-step-ahead forecasts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.8 * len(panels)), sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        days = [datetime.fromtimestamp(ms / 1000, tz=UTC) for ms in panel["starts"]]
        ax.fill_between(days, panel["p10"], panel["p90"], color="tab:blue", alpha=0.2, label="p10-p90")
        ax.plot(days, panel["p50"], color="tab:blue", lw=1.4, label="p50 (one step ahead)")
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


def one_step_band(docs: Sequence[dict], n_buckets: int) -> dict[str, np.ndarray]:
    """p10/p50/p90 of step 1 per bucket column from forecast docs of one series (``origin_index`` set)."""
    band = {key: np.full(n_buckets, np.nan) for key in ("p10", "p50", "p90")}
    for doc in docs:
        column = doc["origin_index"]
        if 0 <= column < n_buckets:
            row = doc["values"][0]
            band["p10"][column], band["p50"][column], band["p90"][column] = row[0], row[len(row) // 2], row[-1]
    return band
