"""M5 weights from the sales before the origin, the moving-block bootstrap, and the comparison of models:
hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tidecast.models.bootstrap import block_bootstrap_ci, block_length
from tidecast.models.weights import RunningSales
from tidecast.stream.backtest.comparison import compare, ratios_to_snaive


def test_running_sales_keep_the_last_window_buckets_only() -> None:
    rs = RunningSales(window=2)
    rs.update(np.array([1.0]), np.array([10.0]))
    rs.update(np.array([2.0, 1.0]), np.array([20.0, 5.0]))  # a second series appears
    assert rs.weights()[0].tolist() == [30.0, 5.0]
    rs.update(np.array([4.0, 0.0]), np.array([40.0, 0.0]))  # the first bucket leaves the window
    assert rs.weights()[0].tolist() == [60.0, 5.0]
    rs.update(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    assert rs.weights() == (pytest.approx([40.0, 0.0]), "revenue")


def test_running_sales_fall_back_on_units_and_clip_returns() -> None:
    rs = RunningSales(window=3)
    rs.update(np.array([3.0, -5.0, np.nan]), np.zeros(3))  # no price: unit sales; a net return weighs 0
    weights, basis = rs.weights()
    assert (weights.tolist(), basis) == ([3.0, 0.0, 0.0], "units")
    rs.update(np.array([1.0, 1.0, 1.0]), np.array([0.0, -2.0, 4.0]))
    assert rs.weights() == (pytest.approx([0.0, 0.0, 4.0]), "revenue")
    with pytest.raises(ValueError):
        RunningSales(window=0)


def test_block_length_is_the_horizon_or_the_cube_root() -> None:
    assert block_length(345, 14) == 14  # cube root 7.0...: the horizon is longer
    assert block_length(1000, 1) == 10
    assert block_length(3, 14) == 3  # never longer than the series
    assert block_length(0, 14) == 1


def test_block_bootstrap_is_deterministic_and_covers_the_mean() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(-1.0, 1.0, 300)
    mean, (lo, hi) = block_bootstrap_ci(x, block=7)
    assert mean == pytest.approx(float(x.mean()))
    assert lo < mean < hi < 0.0  # a clear lead
    assert block_bootstrap_ci(x, block=7) == (mean, (lo, hi))  # fixed seed
    # Standard error of a mean of 300 iid N(0, 1): 0.058 -> a 95% half-width near 0.11.
    assert 0.07 < (hi - lo) / 2 < 0.16
    assert block_bootstrap_ci(np.array([3.0]), block=1)[0] == 3.0
    assert math.isnan(block_bootstrap_ci(np.array([3.0]), block=1)[1][0])
    with pytest.raises(ValueError):
        block_bootstrap_ci(np.array([1.0, np.nan]), block=1)


def test_blocks_widen_the_interval_of_dependent_origins() -> None:
    # Runs of 10 equal values: resampling single origins understates the spread of the mean.
    x = np.repeat(np.random.default_rng(2).normal(0.0, 1.0, 30), 10)
    _, (lo1, hi1) = block_bootstrap_ci(x, block=1)
    _, (lo10, hi10) = block_bootstrap_ci(x, block=10)
    assert hi10 - lo10 > 2 * (hi1 - lo1)


def _model(values: list[float], metric: str = "wrmsse") -> dict:
    return {metric: float(np.mean(values)), "per_origin": {"origin": list(range(len(values))), metric: values}}


def test_compare_picks_the_best_baseline_and_tells_a_tie() -> None:
    models = {
        "tidecast": _model([1.0, 2.0, 1.0, 2.0, 1.0, 2.0]),
        "seasonal_naive": _model([2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
        "tsb": _model([2.0, 1.0, 1.0, 2.0, 2.0, 1.0]),  # same mean as tidecast, other origins
    }
    c = compare(models, horizon=1, metrics=("wrmsse",))["wrmsse"]
    assert (c["best_baseline"], c["mean_diff"], c["origins"], c["block"]) == ("tsb", 0.0, 6, 2)
    assert c["ci95"][0] < 0.0 < c["ci95"][1] and c["verdict"] == "tie"
    models["tsb"] = _model([2.5] * 6)
    c = compare(models, horizon=1, metrics=("wrmsse",))["wrmsse"]
    assert (c["best_baseline"], c["mean_diff"], c["verdict"]) == ("seasonal_naive", -0.5, "tidecast ahead")
    assert compare({"tidecast": models["tidecast"]}, horizon=1) == {}


def test_compare_uses_the_origins_both_score() -> None:
    ours = {"mae": 1.0, "per_origin": {"origin": [1, 2, 3], "mae": [1.0, float("nan"), 1.0]}}
    theirs = {"mae": 3.0, "per_origin": {"origin": [2, 3, 4], "mae": [5.0, 3.0, 3.0]}}
    c = compare({"tidecast": ours, "naive": theirs}, horizon=1, metrics=("mae",))["mae"]
    assert (c["mean_diff"], c["origins"]) == (-2.0, 1)  # origin 3 only


def test_ratios_to_seasonal_naive() -> None:
    models = {"tidecast": {"mae": 1.0, "wrmsse": None}, "seasonal_naive": {"mae": 4.0, "wrmsse": 2.0}}
    assert ratios_to_snaive(models, ("mae", "wrmsse")) == {
        "tidecast": {"mae": 0.25, "wrmsse": None},
        "seasonal_naive": {"mae": 1.0, "wrmsse": 1.0},
    }
    assert ratios_to_snaive({"tidecast": {"mae": 1.0}}) == {}
