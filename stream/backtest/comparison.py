"""tidecast against the baselines: every figure as a ratio to seasonal naive, and tidecast's difference from
the best baseline per metric with a 95% moving-block bootstrap interval over origins.

The metrics are means over origins of per-origin values (:class:`~tidecast.models.metrics.Scorer`), and
every model is scored on the same (series, origin, step) points, so the difference of two models' figures
is the mean over origins of their per-origin differences; :func:`~tidecast.models.bootstrap.
block_bootstrap_ci` resamples those differences in blocks of consecutive origins. A negative difference is a
lead for tidecast (every compared metric is an error: lower is better); an interval that holds 0 is a tie.

>>> po = lambda *v: {"origin": list(range(len(v))), "mae": list(v)}
>>> models = {"tidecast": {"mae": 1.0, "per_origin": po(1.0, 1.0, 1.0, 1.0)},
...           "seasonal_naive": {"mae": 2.0, "per_origin": po(2.0, 2.0, 2.0, 2.0)},
...           "naive": {"mae": 1.5, "per_origin": po(1.4, 1.6, 1.4, 1.6)}}
>>> ratios_to_snaive(models, ("mae",))["naive"]
{'mae': 0.75}
>>> c = compare(models, horizon=1, metrics=("mae",))["mae"]
>>> c["best_baseline"], round(c["mean_diff"], 3), c["verdict"]
('naive', -0.5, 'tidecast ahead')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from tidecast.models.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, block_bootstrap_ci, block_length
from tidecast.stream.backtest.config import TIDECAST

SNAIVE = "seasonal_naive"
COMPARED: tuple[str, ...] = ("mae", "rmse", "mase", "rmsse", "wrmsse", "wspl")
"""The error metrics compared and given as ratios (coverage and bias are not losses: no best, no ratio)."""


def ratios_to_snaive(models: Mapping[str, Mapping], metrics: Sequence[str] = COMPARED) -> dict[str, dict]:
    """Per model, ``metric / seasonal naive's metric`` (None where either is undefined); {} without it."""
    base = models.get(SNAIVE)
    if base is None:
        return {}
    out: dict[str, dict] = {}
    for name, m in models.items():
        out[name] = {}
        for k in metrics:
            a, b = m.get(k), base.get(k)
            ok = a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b > 0
            out[name][k] = float(a) / float(b) if ok else None  # type: ignore[arg-type]
    return out


def compare(
    models: Mapping[str, Mapping],
    horizon: int,
    metrics: Sequence[str] = COMPARED,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, dict]:
    """Per metric: the best baseline (lowest figure), tidecast's mean difference from it over the origins
    both score, its 95% moving-block bootstrap interval (block :func:`block_length` of the origins and
    ``horizon``), and a verdict; {} without tidecast or a baseline."""
    if TIDECAST not in models or len(models) < 2:
        return {}
    out: dict[str, dict] = {}
    for metric in metrics:
        scored: dict[str, float] = {
            name: float(m[metric]) for name, m in models.items() if name != TIDECAST and _finite(m.get(metric))
        }
        if not scored:
            continue
        best = min(scored, key=lambda name: scored[name])
        diff = _differences(models[TIDECAST], models[best], metric)
        if diff.size == 0:
            continue
        block = block_length(diff.size, horizon)
        mean, (lo, hi) = block_bootstrap_ci(diff, block, resamples=resamples, seed=seed)
        out[metric] = {
            "best_baseline": best,
            "tidecast": models[TIDECAST].get(metric),
            "baseline": scored[best],
            "mean_diff": mean,
            "ci95": [lo, hi],
            "origins": int(diff.size),
            "block": block,
            "verdict": _verdict(lo, hi),
        }
    return out


def _differences(ours: Mapping, theirs: Mapping, metric: str) -> np.ndarray:
    """Per-origin ``ours - theirs`` over the origins where both are defined, in origin order."""
    if "per_origin" not in ours or "per_origin" not in theirs:
        return np.zeros(0)
    a = dict(zip(ours["per_origin"]["origin"], ours["per_origin"][metric], strict=True))
    b = dict(zip(theirs["per_origin"]["origin"], theirs["per_origin"][metric], strict=True))
    common = sorted(o for o in a.keys() & b.keys() if _finite(a[o]) and _finite(b[o]))
    return np.array([a[o] - b[o] for o in common], dtype=float)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _verdict(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undecided"
    if hi < 0:
        return "tidecast ahead"
    if lo > 0:
        return "baseline ahead"
    return "tie"
