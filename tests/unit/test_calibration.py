"""Online quantile calibration (models/calibration.py), the dormancy inputs, and the learner state /3."""

from __future__ import annotations

import numpy as np
import pytest

from tidecast.models.calibration import QuantileCalibrator
from tidecast.models.features import dormancy_features
from tidecast.models.learner import LearnerConfig, OnlineLearner

SMALL = LearnerConfig(horizon=3, lags=8, aux_lags=2, scale_window=8, hidden=16, batch_size=32,
                      replay_capacity=64, sku_buckets=64, store_buckets=8)


def test_offsets_reach_the_levels_on_counts() -> None:
    """Too-wide quantiles of Poisson(4) counts are tracked to their levels (randomised, count-aware)."""
    rng = np.random.default_rng(0)
    cal = QuantileCalibrator(horizon=2, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.2)
    scale = np.full(500, 5.0, np.float32)  # mean 4 units: band 2-8
    q = np.broadcast_to(np.array([0.0, 0.8, 2.0], np.float32), (500, 2, 3)).copy()  # p90 10 units: far too high
    for _ in range(300):
        y = rng.poisson(4.0, (500, 2)).astype(np.float32)
        cal.update(q, y, np.ones((500, 2), bool), scale, count_aware=True)
    units = cal.apply(q, scale) * scale[:, None, None]
    y = rng.poisson(4.0, 200_000)
    below = [np.mean(np.clip(units[0, 0, j] - y + 0.5, 0, 1)) for j in (0, 2)]
    assert below == pytest.approx([0.1, 0.9], abs=0.03)
    assert units[0, 0, 1] == pytest.approx(4.0)  # the median is left alone


def test_calibrated_quantiles_stay_ordered_and_non_negative() -> None:
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1)
    cal.offsets[:] = [[-3.0, 0.0, -3.0]]  # would cross the median and go below zero
    out = cal.apply(np.array([[[0.2, 1.0, 1.5]]], np.float32), np.ones(1, np.float32))
    assert out.tolist() == [[[0.0, 1.0, 1.0]]]


def test_a_bound_holding_a_quantile_does_not_move_its_offset() -> None:
    """All-zero actuals ask a p10 at 0 to go lower still: it cannot, so its offset must not run away (it moves
    once, until the bound at 0 holds the quantile, then stays)."""
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1)
    for _ in range(50):
        cal.update(np.zeros((10, 1, 3), np.float32), np.zeros((10, 1), np.float32), np.ones((10, 1), bool),
                   np.ones(10, np.float32), count_aware=True)
    assert cal.offsets[0, 0, 0] == pytest.approx(-0.2 * 0.4)


def test_dormancy_tells_a_dead_item_from_a_quiet_one() -> None:
    quiet = [0, 1, 0, 1, 0, 1, 0, 0]  # sells every other bucket, two buckets since its last sale
    dead = [5, 4, 6, 0, 0, 0, 0, 0]  # sold every bucket, then five buckets without
    f = dormancy_features(np.array([quiet, dead], np.float32), None, np.array([8, 8]))
    assert f[1, 0] > 1.5 * f[0, 0] and f[1, 1] > 1.5 * f[0, 1]


def test_calibration_is_checkpointed_and_old_states_are_refused_by_name() -> None:
    rng = np.random.default_rng(1)
    hist = rng.poisson(3.0, (6, 12, 7)).astype(np.float32)
    seen, stores, skus = np.zeros(6, np.int64), ["s"] * 6, list("abcdef")
    learner = OnlineLearner(SMALL)
    for t in range(20, 26):
        learner.learn(hist, seen, stores, skus, t, 86_400)
    assert np.abs(learner.calibrator.offsets).sum() > 0
    state = learner.state_dict()
    restored = OnlineLearner.from_state_dict(state)
    np.testing.assert_array_equal(restored.calibrator.offsets, learner.calibrator.offsets)
    np.testing.assert_array_equal(restored.forecast(hist, seen, stores, skus, 26, 86_400).quantiles,
                                  learner.forecast(hist, seen, stores, skus, 26, 86_400).quantiles)
    with pytest.raises(ValueError, match=r"tidecast\.learner/2 state, written by an older tidecast"):
        OnlineLearner(SMALL).load_state_dict({**state, "format": "tidecast.learner/2"})
