"""Slow movers and the 80% band, from a backtest's forecasts file (``tidecast backtest ... --forecasts FILE``).

Prints, per model: the bias of the mean (forecast - actual, units per bucket) on the slowest series and on
the rest, the 80% band's coverage (per-series mean, as the backtest scores it) and its misses below p10 and
above p90. "Slowest series": the ``--slowest`` N series (default 1,503, 37% of Online Retail's 4,069
scored series) with the lowest mean actual units per scored point, ties broken by series id. Bias is the
mean over their points ("pooled") and the mean of per-series means ("per series").

Reference line ``calibrated counts``: the coverage of each series' own empirical p10-p90 of its actuals per
day of the week (in-sample, discrete quantiles): what exactly calibrated quantiles of counts cover. A band
[lo, hi] of counts covers every actual equal to lo or hi, so for intermittent demand the closed band of
calibrated quantiles covers well over 80% (every zero, when p10 is 0).

    .venv/bin/python bench/slow_movers.py FILE [FILE ...] [--slowest 1503 | --share 0.369]

Needs pyarrow (the ``parquet`` extra) to read the file fast.

>>> _pooled_bias(np.array([1.0, 2.0]), np.array([0.0, 2.0]))
0.5
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

import numpy as np


def _pooled_bias(mean: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(mean - actual))


def _per_series(values: np.ndarray, ser: np.ndarray, n_series: int) -> np.ndarray:
    n = np.bincount(ser, minlength=n_series)
    return np.bincount(ser, values, minlength=n_series) / np.maximum(n, 1)


def _read(path: str) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        table = csv.read_csv(path, convert_options=csv.ConvertOptions(
            column_types={"origin": pa.string(), "target": pa.string()}))
    qcols = sorted((c for c in table.column_names if c.startswith("q")), key=lambda c: float(c[1:]))
    series = pc.dictionary_encode(table["series"]).combine_chunks()
    target = pc.dictionary_encode(table["target"]).combine_chunks()
    weekday = np.array([date.fromisoformat(s[:10]).weekday() for s in target.dictionary.to_pylist()])
    # complete origins only (every step observed), as the backtest scores: older files hold the last ones too
    horizon = int(pc.max(table["step"]).as_py())
    last = date.fromisoformat(str(pc.max(table["target"]).as_py())[:10]).toordinal() - (horizon - 1)
    origins = pc.dictionary_encode(table["origin"]).combine_chunks()
    ok_origin = np.array([date.fromisoformat(s[:10]).toordinal() <= last for s in origins.dictionary.to_pylist()])
    keep = ok_origin[origins.indices.to_numpy()]
    return {k: v if k == "names" else v[keep] for k, v in {
        "model": table["model"].to_numpy(zero_copy_only=False).astype(str),
        "ser": series.indices.to_numpy().astype(np.int64),
        "names": np.array(series.dictionary.to_pylist()),
        "weekday": weekday[target.indices.to_numpy()],
        "mean": table["mean"].to_numpy(), "lo": table[qcols[0]].to_numpy(),
        "hi": table[qcols[-1]].to_numpy(), "y": table["actual"].to_numpy(),
    }.items()}


def _calibrated_coverage(y: np.ndarray, ser: np.ndarray, weekday: np.ndarray, n_series: int) -> float:
    """Per-series mean coverage of each (series, weekday)'s own empirical p10-p90 (discrete quantiles)."""
    key = ser * 7 + weekday
    order = np.lexsort((y, key))
    k, v = key[order], y[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, len(k)])
    lo = v[starts + np.ceil(0.1 * counts).astype(int) - 1]
    hi = v[starts + np.ceil(0.9 * counts).astype(int) - 1]
    group = np.repeat(np.arange(len(starts)), counts)
    covered = (v >= lo[group]) & (v <= hi[group])
    return float(_per_series(covered.astype(float), ser[order], n_series)[np.bincount(ser, minlength=n_series) > 0]
                 .mean())


def report(path: str, slowest: int, share: float | None = None) -> None:
    d = _read(path)
    n_series = len(d["names"])
    first = d["model"] == d["model"][0]  # every model is scored on the same points
    n = np.bincount(d["ser"][first], minlength=n_series)
    if share is not None:
        slowest = round(share * int((n > 0).sum()))
    level = _per_series(d["y"][first], d["ser"][first], n_series)
    order = np.lexsort((d["names"], np.where(n > 0, level, np.inf)))
    slow = np.zeros(n_series, bool)
    slow[order[:slowest]] = True
    print(f"{path}: {int((n > 0).sum())} series; slowest {slowest}: mean units per point below "
          f"{level[order[slowest]]:.3f}")
    reference = _calibrated_coverage(d["y"][first], d["ser"][first], d["weekday"][first], n_series)
    print(f"  calibrated counts: coverage80 {reference:.3f} (each series' own p10-p90 per weekday, in-sample)")
    print("  model            | slow bias pooled | per series | rest bias | coverage80 | slow | rest | "
          "y<p10 | y>p90")
    for model in dict.fromkeys(d["model"]):
        m = d["model"] == model
        ser, y, mean = d["ser"][m], d["y"][m], d["mean"][m]
        on_slow = slow[ser]
        covered = ((d["lo"][m] <= y) & (y <= d["hi"][m])).astype(float)
        cov = _per_series(covered, ser, n_series)
        has = np.bincount(ser, minlength=n_series) > 0
        bias = _per_series(mean - y, ser, n_series)
        print(f"  {model:16} | {_pooled_bias(mean[on_slow], y[on_slow]):+16.3f} | {bias[slow & has].mean():+10.3f} | "
              f"{_pooled_bias(mean[~on_slow], y[~on_slow]):+9.3f} | {cov[has].mean():10.3f} | "
              f"{cov[slow & has].mean():.3f} | {cov[~slow & has].mean():.3f} | {np.mean(y < d['lo'][m]):.3f} | "
              f"{np.mean(y > d['hi'][m]):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="forecasts files written by `tidecast backtest --forecasts`")
    parser.add_argument("--slowest", type=int, default=1503, help="how many of the slowest series (default 1503)")
    parser.add_argument("--share", type=float, help="instead: this share of the series (1503/4069 = 0.369)")
    args = parser.parse_args(argv)
    for path in args.files:
        report(path, args.slowest, args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
