"""The online learner: prequential learning from matured labels only, replay, drift-driven learning rate."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from tidecast.models import learner as learner_module
from tidecast.models.features import CHANNELS, REVENUE, UNITS, VIEWS
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.models.lr_control import RateControlConfig, RateController
from tidecast.models.replay import ReplayBuffer

torch.set_num_threads(1)
DAY = 86_400
START = 20_000  # bucket index of the first day of the synthetic panels
CFG = LearnerConfig(horizon=7, lags=14, aux_lags=7, scale_window=14, hidden=32, batch_size=256,
                    steps_per_learn=2, replay_capacity=2048, replay_add=128, sku_buckets=1024,
                    store_buckets=16, quarantine=7)


def seasonal_panel(n: int, length: int, seed: int = 0, shift_at: int | None = None,
                   factor: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts with per-series level and a strong weekly profile; returns (values, rate)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(3.0, 20.0, n)
    week = np.array([0.5, 0.7, 0.9, 1.0, 1.3, 1.8, 0.8])
    rate = level[:, None] * week[(START + np.arange(length)) % 7][None, :]
    if shift_at is not None:
        rate[:, shift_at:] *= factor
    values = np.zeros((n, length, len(CHANNELS)), np.float32)
    values[..., UNITS] = rng.poisson(rate)
    values[..., REVENUE] = values[..., UNITS] * 4.0
    values[..., VIEWS] = rng.poisson(5 * rate)
    return values, rate


def ids(n: int) -> tuple[np.ndarray, list[str], list[str]]:
    return np.full(n, START, np.int64), [f"store{i % 3}" for i in range(n)], [f"sku{i}" for i in range(n)]


def window(values: np.ndarray, pos: int, cfg: LearnerConfig = CFG) -> np.ndarray:
    return values[:, max(0, pos + 1 - (cfg.lags + cfg.horizon)) : pos + 1]


def test_learn_reports_diagnostics_and_versions() -> None:
    values, _ = seasonal_panel(20, 40)
    seen, stores, skus = ids(20)
    lrn = OnlineLearner(CFG)
    info = lrn.learn(window(values, 30), seen, stores, skus, START + 30, DAY)
    assert info["model_version"] == 1 and not info["skipped"] and info["n_fresh"] > 0
    assert {"loss", "train_loss", "lr", "lr_multiplier", "drift", "bias", "replay_size"} <= info.keys()
    assert math.isfinite(info["loss"]) and info["lr"] == pytest.approx(CFG.lr)
    again = lrn.learn(window(values, 30), seen, stores, skus, START + 30, DAY)
    assert again["skipped"] and again["model_version"] == 1  # a replayed bucket is not learned twice


def test_learn_uses_only_matured_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sample learn() builds has its origin before t and labels only for buckets <= t."""
    seen_batches = []
    real = learner_module.build_batch

    def spy(history, first_seen, t, bucket_seconds, spec, rows=None, lags_back=None, with_targets=True):
        batch = real(history, first_seen, t, bucket_seconds, spec, rows, lags_back, with_targets)
        seen_batches.append((t, batch))
        return batch

    monkeypatch.setattr(learner_module, "build_batch", spy)
    values, _ = seasonal_panel(30, 60)
    seen, stores, skus = ids(30)
    seen[5] = START + 50  # a series that launches late: nothing before its launch is a sample
    lrn = OnlineLearner(CFG)
    for pos in range(40, 55):
        lrn.learn(window(values, pos), seen, stores, skus, START + pos, DAY)
    assert seen_batches
    for t, b in seen_batches:
        assert np.all(b.origin < t)
        steps = b.origin[:, None] + 1 + np.arange(CFG.horizon)
        assert np.all(steps[b.mask] <= t)  # a label exists only once its bucket has closed
        assert np.all(b.origin >= seen[b.rows])  # and never from before the series existed
        expected = values[b.rows[:, None], np.clip(steps - START, 0, 59), UNITS]
        assert np.array_equal(b.y[b.mask], expected[b.mask])


def test_non_finite_history_is_treated_as_missing() -> None:
    values, _ = seasonal_panel(20, 60)
    values[3, 25:30] = np.nan
    values[4, 33, UNITS] = np.inf
    seen, stores, skus = ids(20)
    lrn = OnlineLearner(CFG)
    for pos in range(20, 40):
        info = lrn.learn(window(values, pos), seen, stores, skus, START + pos, DAY)
        assert math.isfinite(info["train_loss"]) and math.isfinite(info["loss"])
    assert all(torch.isfinite(p).all() for p in lrn.model.parameters())
    fc = lrn.forecast(window(values, 40), seen, stores, skus, START + 40, DAY)
    assert np.isfinite(fc.quantiles).all() and np.isfinite(fc.mean).all()


def test_learning_beats_the_untrained_model_on_a_seasonal_panel() -> None:
    values, _ = seasonal_panel(60, 130, seed=1)
    seen, stores, skus = ids(60)
    trained, untrained = OnlineLearner(CFG), OnlineLearner(CFG)
    for pos in range(10, 110):
        trained.learn(window(values, pos), seen, stores, skus, START + pos, DAY)

    def mae(model: OnlineLearner) -> float:
        errors = []
        for pos in range(110, 122):
            fc = model.forecast(window(values, pos), seen, stores, skus, START + pos, DAY).quantiles[:, :, 1]
            errors.append(np.abs(fc - values[:, pos + 1 : pos + 1 + CFG.horizon, UNITS]).mean())
        return float(np.mean(errors))

    before, after = mae(untrained), mae(trained)
    assert after < 0.8 * before, (before, after)


def test_the_mean_forecast_learns_the_mean_of_lumpy_demand_where_the_median_cannot() -> None:
    # bulk orders: 0 units on 80% of days, 20 on the rest; median 0, mean 4
    rng = np.random.default_rng(5)
    n, length = 60, 160
    values = np.zeros((n, length, len(CHANNELS)), np.float32)
    values[..., UNITS] = 20.0 * (rng.random((n, length)) < 0.2)
    values[..., REVENUE] = values[..., UNITS] * 4.0
    seen, stores, skus = ids(n)
    lrn = OnlineLearner(CFG)
    for pos in range(10, 150):
        lrn.learn(window(values, pos), seen, stores, skus, START + pos, DAY)
    fc = lrn.forecast(window(values, 150), seen, stores, skus, START + 150, DAY)
    assert float(np.median(fc.quantiles[..., 1])) <= 1.0
    assert 3.4 < float(fc.mean.mean()) < 4.6, float(fc.mean.mean())  # untrained: about the recent mean


def test_longer_buckets_take_more_steps_per_close() -> None:
    values, _ = seasonal_panel(20, 40)
    seen, stores, skus = ids(20)
    taken = {}
    for bucket in (3_600, DAY, 7 * DAY, 91 * DAY):
        lrn = OnlineLearner(CFG)
        lrn.learn(window(values, 30), seen, stores, skus, START + 30, bucket)
        taken[bucket] = lrn.steps
    assert taken == {3_600: 2, DAY: 2, 7 * DAY: 14, 91 * DAY: CFG.max_steps_per_learn}
    with pytest.raises(ValueError):
        LearnerConfig(steps_per_learn=4, max_steps_per_learn=3)


def test_replay_is_a_uniform_reservoir_and_round_trips() -> None:
    buf = ReplayBuffer(capacity=100, n_inputs=1, horizon=1, seed=3)
    for start in range(0, 2000, 50):  # offer 2000 samples whose x is their stream position
        x = np.arange(start, start + 50, dtype=np.float32)[:, None]
        z = np.zeros((50, 2), np.int64)
        buf.add(x, z, z, np.zeros((50, 1), np.float32), np.ones((50, 1), bool), np.ones(50, np.float32))
    kept = buf.sample(100)["x"][:, 0]
    assert len(buf) == 100 and buf.n_seen == 2000 and len(np.unique(kept)) == 100
    assert 600 < kept.mean() < 1400  # old and recent samples alike (uniform mean is ~1000)
    other = ReplayBuffer(capacity=100, n_inputs=1, horizon=1)
    other.load_state_dict(buf.state_dict())
    assert np.array_equal(other.sample(10)["x"], buf.sample(10)["x"])


def test_controller_raises_the_rate_on_a_jump_and_returns_to_exactly_one() -> None:
    rng = np.random.default_rng(0)
    ctl = RateController(RateControlConfig())
    for _ in range(60):
        assert not ctl.update(float(np.exp(rng.normal(0.0, 0.05))), float(rng.normal(0, 0.01)), 0.01)
    assert ctl.multiplier == 1.0
    flags = [ctl.update(float(np.exp(rng.normal(1.0, 0.05))), float(rng.normal(-0.3, 0.01)), 0.01)
             for _ in range(3)]
    assert any(flags) and ctl.multiplier > 1.0 and ctl.in_episode
    multipliers = [ctl.multiplier]
    for _ in range(120):  # the new regime becomes the normal one
        ctl.update(float(np.exp(rng.normal(1.0, 0.05))), float(rng.normal(-0.3, 0.01)), 0.01)
        multipliers.append(ctl.multiplier)
    assert multipliers[-1] == 1.0 and not ctl.in_episode


def test_controller_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(1)
    stream = [(float(np.exp(rng.normal(k > 50, 0.05))), float(rng.normal(-0.2 * (k > 50), 0.01)), 0.01)
              for k in range(120)]
    a = RateController()
    for item in stream[:55]:
        a.update(*item)
    b = RateController()
    b.load_state_dict(a.state_dict())
    out_a = [(a.update(*item), a.multiplier) for item in stream[55:]]
    out_b = [(b.update(*item), b.multiplier) for item in stream[55:]]
    assert out_a == out_b


def test_learner_detects_an_abrupt_shift_and_the_multiplier_settles_back() -> None:
    shift = 60
    values, _ = seasonal_panel(60, 140, seed=2, shift_at=shift)
    seen, stores, skus = ids(60)
    lrn = OnlineLearner(CFG)
    trace = []
    for pos in range(10, 140):
        info = lrn.learn(window(values, pos), seen, stores, skus, START + pos, DAY)
        trace.append((pos, info["drift"], info["lr_multiplier"], info["n_fresh"]))
    drifts = [pos for pos, drift, _, _ in trace if drift]
    assert drifts and shift <= drifts[0] <= shift + 3, drifts
    assert not [pos for pos in drifts if pos < shift]  # no false alarm on the stationary stretch
    peak = max(m for pos, _, m, _ in trace if pos >= shift)
    assert peak == pytest.approx(CFG.rate.boost)
    assert trace[-1][2] == 1.0  # back to the base rate
    # samples straddling the detected change are quarantined for `quarantine` buckets
    first = drifts[0]
    assert [n for pos, _, _, n in trace if first < pos < first + 2] == [0]


def test_fixed_rate_never_moves() -> None:
    values, _ = seasonal_panel(30, 90, seed=2, shift_at=50)
    seen, stores, skus = ids(30)
    lrn = OnlineLearner(dataclasses.replace(CFG, adaptive_lr=False))
    infos = [lrn.learn(window(values, pos), seen, stores, skus, START + pos, DAY) for pos in range(10, 90)]
    assert {i["lr_multiplier"] for i in infos} == {1.0} and not any(i["drift"] for i in infos)


def test_a_store_reopening_after_a_long_closure_gets_a_bounded_mean() -> None:
    # Rossmann's stores closed for a month or more (store 348: 28 days, then 19,637 units): while closed the
    # window holds only zeros, the scale is scale_eps (1 unit), and the first days after the reopening read as
    # thousands of scales. Learnt as they were, those labels taught the mean head to forecast 0.5 million units
    # (a 14-22x the store's level here). Labels are censored at the input bound (LearnerConfig._scaled_labels).
    n, length, closed = 10, 160, 50
    rng = np.random.default_rng(0)
    level = rng.uniform(3000.0, 9000.0, n)
    week = np.array([1.0, 0.9, 0.9, 1.0, 1.2, 1.1, 0.0])  # closed on Sundays, as Rossmann's stores
    values = np.zeros((n, length, len(CHANNELS)), np.float32)
    values[..., UNITS] = rng.poisson(level[:, None] * week[(START + np.arange(length)) % 7][None, :])
    for i, start in enumerate(rng.integers(20, length - closed - 10, n)):
        values[i, start : start + closed] = 0.0  # a long run of zeros, then back to normal
    values[..., REVENUE] = values[..., UNITS] * 4.0
    seen, stores, skus = ids(n)
    lrn, worst = OnlineLearner(CFG), 0.0
    for pos in range(10, length - 1):
        fc = lrn.forecast(window(values, pos), seen, stores, skus, START + pos, DAY)
        worst = max(worst, float((fc.mean / level[:, None]).max()))
        lrn.learn(window(values, pos), seen, stores, skus, START + pos, DAY)
    assert worst < 4.0, worst  # uncensored labels: 22.2


def test_an_untrained_mean_is_the_recent_mean_not_the_scale() -> None:
    # the scale is the recent mean + scale_eps (1 unit): a slow item selling 0.2 a day has a scale of 1.2, and
    # a mean head that starts from the scale forecasts six times its sales until it learns otherwise
    hist = np.zeros((2, CFG.lags + CFG.horizon, len(CHANNELS)), np.float32)
    hist[0, :, UNITS] = 4.0
    hist[1, ::5, UNITS] = 1.0  # 0.2 a day
    seen, stores, skus = ids(2)
    fc = OnlineLearner(CFG).forecast(hist, seen, stores, skus, START + 40, DAY)
    np.testing.assert_allclose(fc.mean.mean(axis=1), [4.0, hist[1, -CFG.scale_window:, UNITS].mean()], rtol=0.1)
    prior_off = OnlineLearner(dataclasses.replace(CFG, mean_prior=False))
    assert prior_off.forecast(hist, seen, stores, skus, START + 40, DAY).mean[1].mean() > 0.9  # about the scale
