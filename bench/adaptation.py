"""Ablation: does the learner with drift control recover faster from an abrupt shift than with a fixed rate?

A synthetic panel (daily buckets, weekly seasonality, Poisson counts, some series launching mid-way) doubles
its demand level for a share of the series at ``shift``. The same learner runs prequentially twice from the
same seed, with the adaptive rate and with the fixed base rate: at each closed bucket it forecasts, then
learns. Every forecast issued at origin ``o`` is scored on its ``H`` steps once they have closed.

Error is the MAE of the median, divided by the MAE of the oracle median (the Poisson median of the true
rate) on the same cells: a ratio of 1.0 is perfect, and unlike raw MAE it does not rise just because
doubled Poisson counts are noisier. "Recovery" counts the origins after the shift until the rolling
7-origin ratio (over post-shift origins only) is back within 10% of its pre-shift level.

    .venv/bin/python bench/adaptation.py            # about a minute on one core
    .venv/bin/python bench/adaptation.py --series 200 --seeds 1
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import poisson

from tidecast.models.features import ADD_TO_CART, CHANNELS, ORDERS, PROMO_ORDERS, REVENUE, UNITS, VIEWS
from tidecast.models.learner import LearnerConfig, OnlineLearner

DAY = 86_400
ROLL = 7
TOLERANCE = 1.10


@dataclass(frozen=True)
class Panel:
    """Dense history ``[S, T, F]`` from bucket ``start``; ``rate`` is the true Poisson mean of units."""

    values: np.ndarray
    rate: np.ndarray
    first_seen: np.ndarray
    stores: list[str]
    skus: list[str]
    start: int
    shift: int


def make_panel(n_series: int, n_buckets: int, shift: int, shifted_share: float, factor: float,
               seed: int, kind: str = "level") -> Panel:
    """Poisson demand with per-series level and weekly profile.

    ``kind="level"``: a share of the series multiply their level by ``factor`` from bucket ``shift``.
    ``kind="profile"``: their weekly profile rotates by three days instead (same level, new pattern).
    """
    rng = np.random.default_rng(seed)
    start = 19_000  # bucket index of the first day (bucket 0 is Monday 1970-01-05)
    level = np.exp(rng.normal(np.log(6.0), 0.8, n_series)).clip(0.3, 80.0)
    base_week = np.array([0.8, 0.85, 0.9, 1.0, 1.25, 1.35, 0.85])
    week = base_week * np.exp(rng.normal(0.0, 0.15, (n_series, 7)))
    week /= week.mean(axis=1, keepdims=True)
    days = (np.arange(n_buckets) + start) % 7  # day of week, Monday = 0
    rate = level[:, None] * week[:, days]
    shifted = rng.random(n_series) < shifted_share
    if kind == "level":
        rate[shifted, shift:] *= factor
    elif kind == "profile":
        rotated = level[:, None] * week[:, (days + 3) % 7]
        rate[shifted, shift:] = rotated[shifted, shift:]
    else:
        raise ValueError(f"unknown shift kind {kind!r}")
    first_seen = np.where(rng.random(n_series) < 0.1, rng.integers(0, shift - 28, n_series), 0)
    rate[np.arange(n_buckets)[None, :] < first_seen[:, None]] = 0.0
    units = rng.poisson(rate).astype(np.float32)
    values = np.zeros((n_series, n_buckets, len(CHANNELS)), np.float32)
    price = rng.uniform(2.0, 50.0, n_series)[:, None].astype(np.float32)
    values[..., UNITS] = units
    values[..., ORDERS] = np.minimum(units, rng.poisson(0.8 * units + 0.01))
    values[..., REVENUE] = units * price
    values[..., VIEWS] = rng.poisson(8.0 * rate + 1.0 * (rate > 0))
    values[..., ADD_TO_CART] = rng.poisson(1.5 * rate)
    values[..., PROMO_ORDERS] = 0.0
    stores = [f"store-{i % 7}" for i in range(n_series)]
    skus = [f"sku-{seed}-{i}" for i in range(n_series)]
    return Panel(values, rate, first_seen + start, stores, skus, start, shift)


@dataclass
class RunResult:
    ratio: np.ndarray  # per origin: model MAE / oracle MAE (NaN when not scorable)
    mae: np.ndarray
    multiplier: np.ndarray
    drifts: list[int]
    seconds: float


def run(panel: Panel, config: LearnerConfig, warmup: int) -> RunResult:
    """Prequential loop over every bucket from ``warmup``: forecast at t, then learn at t."""
    torch.manual_seed(config.seed)
    learner = OnlineLearner(config)
    n_buckets = panel.values.shape[1]
    h, window = config.horizon, config.lags + config.horizon
    median = config.quantiles.index(0.5)
    oracle = poisson.ppf(0.5, np.maximum(panel.rate, 1e-9)).astype(np.float32)
    ratio, mae = np.full(n_buckets, np.nan), np.full(n_buckets, np.nan)
    mult = np.ones(n_buckets)
    drifts: list[int] = []
    started = time.perf_counter()
    for pos in range(warmup, n_buckets):
        t = panel.start + pos
        hist = panel.values[:, max(0, pos + 1 - window) : pos + 1]
        live = panel.first_seen <= t
        if pos + h < n_buckets:
            fc = learner.forecast(hist, panel.first_seen, panel.stores, panel.skus, t, DAY).quantiles[:, :, median]
            actual = panel.values[live, pos + 1 : pos + 1 + h, UNITS]
            err = np.abs(fc[live] - actual).mean()
            best = np.abs(oracle[live, pos + 1 : pos + 1 + h] - actual).mean()
            ratio[pos], mae[pos] = err / best, err
        info = learner.learn(hist, panel.first_seen, panel.stores, panel.skus, t, DAY)
        mult[pos] = info["lr_multiplier"]
        if info["drift"]:
            drifts.append(pos - panel.shift)
    return RunResult(ratio, mae, mult, drifts, time.perf_counter() - started)


def rolling_after(values: np.ndarray, begin: int) -> np.ndarray:
    """Trailing ``ROLL``-origin mean that never reaches back before ``begin``."""
    out = np.full_like(values, np.nan)
    for i in range(begin, len(values)):
        window = values[max(begin, i - ROLL + 1) : i + 1]
        window = window[np.isfinite(window)]
        if len(window):
            out[i] = window.mean()
    return out


def summarize(res: RunResult, shift: int, horizon: int) -> dict[str, float]:
    """Pre-shift level, peak, recovery origins after the shift (NaN if never) and the false alarms."""
    pre = res.ratio[shift - horizon - 28 : shift - horizon]  # forecasts whose targets are all pre-shift
    pre_level = float(np.nanmean(pre))
    roll = rolling_after(res.ratio, shift)
    after = roll[shift:]
    ok = np.flatnonzero(after <= TOLERANCE * pre_level)
    return {
        "pre_ratio": pre_level,
        "pre_mae": float(np.nanmean(res.mae[shift - horizon - 28 : shift - horizon])),
        "peak_ratio": float(np.nanmax(after)),
        "recovery": float(ok[0] + 1) if len(ok) else float("nan"),
        "false_alarms": float(sum(1 for d in res.drifts if d < 0)),
        "alarms_after": float(sum(1 for d in res.drifts if d >= 0)),
        "first_alarm": float(min((d for d in res.drifts if d >= 0), default=-1)),
        "late_ratio": float(np.nanmean(res.ratio[-ROLL - horizon : -horizon])),
        "seconds": res.seconds,
    }


BASE = LearnerConfig(batch_size=512, steps_per_learn=4, replay_capacity=8192, replay_add=512)
VARIANTS: dict[str, dict] = {
    "fixed": {"adaptive_lr": False},
    "adaptive": {},  # the default: the rate boost (the quarantine is off by default since issue 10)
    "+ quarantine": {"quarantine": 7},
}


@dataclass(frozen=True)
class Job:
    scenario: str
    kind: str
    share: float
    seed: int
    variant: str
    overrides: tuple = ()


def run_job(job: Job, args: argparse.Namespace) -> tuple[Job, dict[str, float]]:
    """One prequential run (top level so a process pool can run it)."""
    torch.set_num_threads(1)
    panel = make_panel(args.series, args.buckets, args.shift, job.share, args.factor, job.seed, job.kind)
    changes = {**VARIANTS[job.variant], **dict(job.overrides), "seed": job.seed}
    cfg = dataclasses.replace(BASE, **changes)
    return job, summarize(run(panel, cfg, warmup=1), args.shift, cfg.horizon)


def run_all(jobs: list[Job], args: argparse.Namespace) -> list[tuple[Job, dict[str, float]]]:
    if args.jobs <= 1:
        return [run_job(job, args) for job in jobs]
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("fork")) as pool:
        return list(pool.map(run_job, jobs, [args] * len(jobs)))


def fmt_recovery(value: float) -> str:
    return "never" if np.isnan(value) else f"{value:.0f}"


def report(results: list[tuple[Job, dict[str, float]]], args: argparse.Namespace, console: Console) -> None:
    title = (f"recovery after an abrupt shift at bucket {args.shift} ({args.series} series, daily, "
             "ratio = MAE of the median / oracle MAE)")
    table = Table(title=title)
    for col in ("scenario", "seed", "variant", "pre MAE", "pre ratio", "peak ratio", "recovery (buckets)",
                "alarms before/after", "last ratio", "s"):
        table.add_column(col, justify="left" if col in ("scenario", "variant") else "right")
    for job, s in results:
        table.add_row(job.scenario, str(job.seed), job.variant, f"{s['pre_mae']:.2f}",
                      f"{s['pre_ratio']:.3f}", f"{s['peak_ratio']:.2f}", fmt_recovery(s["recovery"]),
                      f"{s['false_alarms']:.0f}/{s['alarms_after']:.0f}", f"{s['late_ratio']:.3f}",
                      f"{s['seconds']:.0f}")
    console.print(table)
    by_key = {(j.scenario, j.seed, j.variant): s["recovery"] for j, s in results}
    pairs = [(by_key[(sc, sd, "adaptive")], by_key[(sc, sd, "fixed")]) for (sc, sd, v) in by_key
             if v == "adaptive" and sc.startswith("level") and (sc, sd, "fixed") in by_key]
    never = 10.0 * args.buckets  # a run that never recovers counts as very slow
    pairs = [(np.nan_to_num(a, nan=never), np.nan_to_num(f, nan=never)) for a, f in pairs]
    faster = sum(a < f for a, f in pairs)
    mean_a, mean_f = np.mean([a for a, _ in pairs]), np.mean([f for _, f in pairs])
    ok = faster == len(pairs)
    verdict = "adaptive recovers faster than fixed" if ok else "adaptive does NOT recover faster than fixed"
    console.print(f"verdict: {verdict} after every level shift ({faster}/{len(pairs)} runs; mean recovery "
                  f"{mean_a:.1f} vs {mean_f:.1f} buckets)")
    for (sc, sd, v), rec in by_key.items():
        fixed = by_key.get((sc, sd, "fixed"))
        if v == "adaptive" and not sc.startswith("level") and fixed is not None:
            relation = "slower" if rec > fixed else "not slower"
            console.print(f"[dim]{sc} (seed {sd}): adaptive is {relation} than fixed "
                          f"({fmt_recovery(rec)} vs {fmt_recovery(fixed)} buckets)[/dim]")


def sweep(args: argparse.Namespace, console: Console) -> None:
    """Validation sweep of the boost on seeds the report does not use; prints the mean recovery per boost."""
    boosts = (1.0, 2.0, 3.0, 4.0, 5.0)
    scenarios = (("level 50%", "level", 0.5), ("level 100%", "level", 1.0), ("profile 100%", "profile", 1.0))
    jobs = [Job(name, kind, share, 100 + k, "adaptive", (("rate", dataclasses.replace(BASE.rate, boost=b)),))
            for b in boosts for (name, kind, share) in scenarios for k in range(args.seeds)]
    results = run_all(jobs, args)
    table = Table(title="validation sweep of the boost (mean recovery in buckets; lower is better)")
    table.add_column("boost", justify="right")
    for name, _, _ in scenarios:
        table.add_column(name, justify="right")
    table.add_column("mean", justify="right")
    never = float(args.buckets - args.shift)
    for b in boosts:
        cells = []
        for name, _, _ in scenarios:
            rec = [np.nan_to_num(s["recovery"], nan=never) for j, s in results
                   if j.scenario == name and dict(j.overrides)["rate"].boost == b]
            cells.append(float(np.mean(rec)))
        table.add_row(f"{b:g}", *(f"{c:.1f}" for c in cells), f"{np.mean(cells):.1f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--buckets", type=int, default=300)
    parser.add_argument("--shift", type=int, default=200)
    parser.add_argument("--factor", type=float, default=2.0, help="level multiplier of the level shift")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the main scenario (and of the sweep)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--sweep", action="store_true", help="run the validation sweep of the boost instead")
    args = parser.parse_args()
    console = Console(width=150)
    started = time.perf_counter()
    if args.sweep:
        sweep(args, console)
    else:
        jobs = [Job("level 50%", "level", 0.5, seed, v) for seed in range(args.seeds) for v in VARIANTS]
        jobs += [Job(name, kind, 1.0, 0, v) for name, kind in (("level 100%", "level"), ("profile 100%", "profile"))
                 for v in VARIANTS]
        report(run_all(jobs, args), args, console)
    console.print(f"[dim]{time.perf_counter() - started:.0f} s in all[/dim]")


if __name__ == "__main__":
    main()
