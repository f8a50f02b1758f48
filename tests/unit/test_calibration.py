"""Online quantile calibration (models/calibration.py, models/forecast_memory.py), the dormancy inputs, and
the learner state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tidecast.models.calibration import QuantileCalibrator
from tidecast.models.features import dormancy_features
from tidecast.models.forecast_memory import ForecastMemory
from tidecast.models.learner import LearnerConfig, OnlineLearner, series_level

SMALL = LearnerConfig(horizon=3, lags=8, aux_lags=2, scale_window=8, hidden=16, batch_size=32,
                      replay_capacity=64, sku_buckets=64, store_buckets=8)


def test_offsets_reach_the_levels_on_counts() -> None:
    """Too-wide quantiles of Poisson(4) counts are tracked until the published band misses what its levels say:
    10% of the actuals below p10 and 10% above p90, counted as the scorer counts (a closed band)."""
    rng = np.random.default_rng(0)
    cal = QuantileCalibrator(horizon=2, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.2)
    scale = np.full(500, 5.0, np.float32)  # mean 4 units: band 2-8
    band = cal.bands(np.full(500, 4.0))
    q = np.broadcast_to(np.array([0.0, 0.8, 2.0], np.float32), (500, 2, 3)).copy()  # p90 10 units: far too high
    below, above = [], []
    for i in range(400):
        y = rng.poisson(4.0, (500, 2)).astype(np.float32)
        units = cal.apply(q, band) * scale[:, None, None]
        if i >= 100:
            below.append(np.mean(y < units[..., 0]))
            above.append(np.mean(y > units[..., 2]))
        cal.update(q, y, np.ones((500, 2), bool), scale, band)
    assert [np.mean(below), np.mean(above)] == pytest.approx([0.1, 0.1], abs=0.02)
    assert (cal.apply(q, band) * scale[:, None, None])[0, 0, 1] == pytest.approx(4.0)  # the median is left alone


def test_offsets_reach_the_levels_on_float32_forecasts_of_many_levels() -> None:
    """Continuous sales of stores of many sizes, forecast too wide in float32 as the network does: the band
    narrows until 10% fall below p10 and 10% above p90. (The offsets once moved only when a float64 sum and
    its float32 twin happened to round alike, so the band stayed too wide: 0.89 on Rossmann.)"""
    rng = np.random.default_rng(1)
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.2)
    n = 1000
    scale = rng.uniform(2_000, 15_000, n).astype(np.float32)
    band = cal.bands(scale)
    q = np.stack([rng.uniform(0.5, 0.7, n), np.ones(n), rng.uniform(1.3, 1.5, n)], axis=1)
    q = q.astype(np.float32)[:, None, :]  # the true band is 1 +- 0.128 (10% sd): these are far too wide
    below, above = [], []
    for i in range(600):  # the step is scaled by the errors' size (0.08 scales here): slow from far too wide
        y = (scale * rng.normal(1.0, 0.1, n)).astype(np.float32)[:, None]
        units = cal.apply(q, band) * scale[:, None, None]
        if i >= 300:
            below.append(np.mean(y < units[..., 0]))
            above.append(np.mean(y > units[..., 2]))
        cal.update(q, y, np.ones((n, 1), bool), scale, band)
    assert [np.mean(below), np.mean(above)] == pytest.approx([0.1, 0.1], abs=0.005)  # was 0.115 and 0.096


def test_calibrated_quantiles_stay_ordered_and_non_negative() -> None:
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1)
    cal.offsets[:] = [[-3.0, 0.0, -3.0]]  # would cross the median and go below zero
    out = cal.apply(np.array([[[0.2, 1.0, 1.5]]], np.float32), np.zeros(1, np.int64))
    assert out.tolist() == [[[0.0, 1.0, 1.0]]]


def test_a_bound_holding_a_quantile_does_not_move_its_offset() -> None:
    """All-zero actuals: a p90 at 0 (held there by the median) is asked to go lower still; it cannot, so its
    offset must not run away (it moves once, until the bound holds the quantile, then stays). The p10 at 0
    covers every zero, is asked up, and swings around 0 without running away either way."""
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1)
    cal.magnitude[:] = 1.0  # errors of 1 scale so far: the step starts at gamma
    band = cal.bands(np.zeros(10))
    for _ in range(50):
        cal.update(np.zeros((10, 1, 3), np.float32), np.zeros((10, 1), np.float32), np.ones((10, 1), bool),
                   np.ones(10, np.float32), band)
    assert cal.offsets[0, 0, 2] == pytest.approx(-0.2 * 0.1)
    assert -0.2 <= cal.offsets[0, 0, 0] <= 0.2


def test_bands_are_the_series_volume_over_its_history() -> None:
    hist = np.zeros((3, 10, 7), np.float32)
    hist[0, :, 0] = 0.3  # slow
    hist[1, :, 0] = [20, 20, 20, 20, 20, 20, 0, 0, 0, 0]  # fast, in a quiet week: still fast
    hist[2, 8:, 0] = 3.0  # launched two buckets ago (first_seen): its level is over its own two buckets
    level = series_level(hist, np.array([0, 0, 108]), t=109)
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1)
    assert cal.bands(level).tolist() == [0, 3, 2]


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
    for t in range(20, 26):  # as the forecaster does: learn from what matured at t, then forecast from t
        learner.learn(hist, seen, stores, skus, t, 86_400)
        learner.forecast(hist, seen, stores, skus, t, 86_400)
    assert np.abs(learner.calibrator.offsets).sum() > 0
    state = learner.state_dict()
    restored = OnlineLearner.from_state_dict(state)
    np.testing.assert_array_equal(restored.calibrator.offsets, learner.calibrator.offsets)
    assert len(restored.memory) == len(learner.memory) == SMALL.horizon + 1
    np.testing.assert_array_equal(restored.forecast(hist, seen, stores, skus, 26, 86_400).quantiles,
                                  learner.forecast(hist, seen, stores, skus, 26, 86_400).quantiles)
    with pytest.raises(ValueError, match=r"tidecast\.learner/2 state, written by an older tidecast"):
        OnlineLearner(SMALL).load_state_dict({**state, "format": "tidecast.learner/2"})


def test_each_label_meets_the_forecast_published_for_it() -> None:
    """The calibration scores a label against the quantiles published for it H closes before, not against a
    forecast re-made by the network that has learned since: a label above every published p90 raises that
    step's p90 offset, and only once the step has matured. A what-if forecast (not published) changes nothing."""
    rng = np.random.default_rng(2)
    hist = rng.poisson(3.0, (6, 12, 7)).astype(np.float32)
    seen, stores, skus = np.zeros(6, np.int64), ["s"] * 6, list("abcdef")
    learner = OnlineLearner(SMALL)
    published = learner.forecast(hist, seen, stores, skus, 20, 86_400).quantiles
    learner.forecast(hist * 0, seen, stores, skus, 20, 86_400, remember=False)  # a scenario: not kept
    later = hist.copy()
    later[:, -1, 0] = published[:, 0, 2] + 50  # bucket 21 sells far above every published p90 of step 1
    with torch.no_grad():  # the network moves on: re-made now, its step-1 p90 would lie above those labels
        learner.model.head.bias += 10.0
    assert (learner.forecast(later, seen, stores, skus, 20, 86_400, remember=False).quantiles[:, 0, 2]
            > later[:, -1, 0]).all()
    order = [5, 3, 1, 0, 2, 4]  # the panel's rows in another order: the memory goes by series
    learner.learn(later[order], seen, [stores[i] for i in order], [skus[i] for i in order], 21, 86_400)
    p90 = learner.calibrator.offsets[..., 2]
    assert p90[:, 0].max() > 0 and p90[:, 0].min() == 0  # up, in the series' band only
    assert not p90[:, 1:].any() and learner.calibrator.updates == 1  # steps 2 and 3 have not matured


def test_the_forecast_memory_keeps_a_bounded_sample_of_the_last_origins() -> None:
    memory = ForecastMemory(horizon=2, capacity=3)
    rows = memory.sample(10)
    assert rows.tolist() == [0, 4, 9] and memory.sample(3).tolist() == [0, 1, 2]
    for t in range(5, 9):
        memory.remember(t, [("s", "a"), ("s", "b")], np.full((2, 2, 3), float(t), np.float32),
                        np.zeros((2, 2, 3), np.int8), np.array([0, 1]), np.ones(2), np.array([[True], [False]]))
    assert len(memory) == 3  # origins 6, 7 and 8: 6's step 2 matured at 8, older ones have nothing left
    got = memory.matured(9, ["s", "s", "s"], ["c", "a", "b"], np.array([1.0, 2.0, 3.0]), np.zeros(3, np.int64))
    # series b's steps do not count (closed, or no sale); a's step 1 of origin 8 and step 2 of origin 7
    assert sorted(zip(got.step.tolist(), got.published[:, 0].tolist(), got.y.tolist(), strict=True)) == [
        (0, 8.0, 2.0), (1, 7.0, 2.0)]
    restored = ForecastMemory(horizon=2, capacity=3)
    restored.load_state_dict(memory.state_dict())
    again = restored.matured(9, ["s", "s"], ["a", "b"], np.array([2.0, 3.0]), np.zeros(2, np.int64))
    assert sorted(again.published[:, 0].tolist()) == [7.0, 8.0]
    assert restored.matured(9, ["s"], ["a"], np.array([2.0]), np.array([10])).y.size == 0  # not yet launched


def test_the_step_scales_with_the_size_of_the_errors() -> None:
    """The same misses move the offsets in proportion to how far the actuals lie from the median (in scales):
    a unit step would swing a smooth store's band by its whole width (errors of 0.05 scales), and one tenth of
    it would hardly move a slow item's."""
    moves = []
    for spread in (0.05, 1.0):
        cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.2)
        published = np.array([[1.0 - spread, 1.0, 1.0 + spread]] * 4)
        y = np.array([1.0 + 2 * spread, 1.0 - 2 * spread, 1.0 + 2 * spread, 1.0 - 2 * spread])  # outside the band
        cal.update_published(published, y, np.zeros(4, np.int64), np.zeros(4, np.int64),
                             np.zeros((4, 3), np.int8), np.ones(4))
        moves.append(cal.offsets[0, 0, 2])
    assert moves[1] == pytest.approx(20 * moves[0]) and moves[1] == pytest.approx(0.2 * 2.0 * 0.4)


def test_one_wild_label_does_not_set_the_step_for_weeks() -> None:
    """The error size that scales the step counts each label at most 5 times the size so far: one label 300
    scales off the median among errors of 0.04 must not make every later step 75 times larger."""
    cal = QuantileCalibrator(horizon=1, quantiles=(0.1, 0.5, 0.9), fixed=1, gamma=0.2)
    published, zero = np.array([[0.9, 1.0, 1.1]] * 5), np.zeros(5, np.int64)
    held, scale = np.zeros((5, 3), np.int8), np.ones(5)
    cal.update_published(published, np.full(5, 1.04), zero, zero, held, scale)  # errors of 0.04: the size
    cal.update_published(published, np.array([1.04, 1.04, 1.04, 1.04, 301.0]), zero, zero, held, scale)
    assert cal.magnitude[0, 0] < 0.05  # 0.95 * 0.04 + 0.05 * (4 * 0.04 + 0.2) / 5, not 3.04
