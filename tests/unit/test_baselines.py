"""Baselines: hand-computed point forecasts, residual quantiles, and a contract suite over every baseline."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tidecast.models.baselines import (
    BASELINE_NAMES,
    TSB,
    Baseline,
    Croston,
    LightGBMTweedie,
    MovingAverage,
    Naive,
    RiverTS,
    SeasonalNaive,
    make_baseline,
)
from tidecast.models.baselines.residuals import ResidualQuantiles

NAN = float("nan")
Q = (0.1, 0.5, 0.9)

# Small, fast settings for the two heavier baselines.
FAST: dict[str, dict] = {
    "lightgbm": {"refit_every": 14, "num_boost_round": 10, "num_threads": 1, "params": {"min_data_in_leaf": 5}},
}


def build(name: str, horizon: int = 5, quantiles: tuple[float, ...] = Q, **kw: object):
    return make_baseline(name, season=7, quantiles=quantiles, horizon=horizon, **{**FAST.get(name, {}), **kw})


# ------------------------------------------------------------------------------- hand-computed points
def test_naive_last_finite_value() -> None:
    b = Naive(horizon=2).fit(np.array([[1.0, 5.0, 2.0], [NAN, 3.0, NAN], [NAN, NAN, NAN]]))
    np.testing.assert_array_equal(b.point_forecast(), [[2, 2], [3, 3], [0, 0]])


def test_seasonal_naive_same_phase_last_season() -> None:
    # season 3, y = 1..7 seen (t = 7). Targets 7..11 take buckets 4, 5, 6, 4, 5 -> values 5, 6, 7, 5, 6.
    b = SeasonalNaive(horizon=5, season=3).fit(np.arange(1.0, 8.0)[None, :])
    np.testing.assert_array_equal(b.point_forecast(), [[5, 6, 7, 5, 6]])
    # Less than a season: target 2 would need bucket -1 -> naive fallback 8; target 3 takes bucket 0 -> 2.
    b = SeasonalNaive(horizon=2, season=3).fit(np.array([[2.0, 8.0]]))
    np.testing.assert_array_equal(b.point_forecast(), [[8, 2]])


def test_moving_average_window() -> None:
    # window 3: (2 + 6 + 1) / 3 = 3; the late series has two values: (3 + 5) / 2 = 4.
    y = np.array([[4.0, 0.0, 2.0, 6.0, 1.0], [NAN, NAN, NAN, 3.0, 5.0]])
    b = MovingAverage(horizon=2, window=3).fit(y)
    np.testing.assert_allclose(b.point_forecast(), [[3, 3], [4, 4]])


def test_croston_hand_computed() -> None:
    # y = 0 0 3 0 2 0 0 0 5, alpha 0.1; q = buckets since the previous demand, counting the current one.
    # t=2: first demand, q=3 -> z = 3, p = 3
    # t=4: q=2 -> z = 3 + 0.1 (2 - 3) = 2.9,      p = 3 + 0.1 (2 - 3) = 2.9
    # t=8: q=4 -> z = 2.9 + 0.1 (5 - 2.9) = 3.11, p = 2.9 + 0.1 (4 - 2.9) = 3.01 -> 3.11 / 3.01
    y = np.array([[0.0, 0.0, 3.0, 0.0, 2.0, 0.0, 0.0, 0.0, 5.0]])
    np.testing.assert_allclose(Croston(horizon=3).fit(y).point_forecast(), np.full((1, 3), 3.11 / 3.01))
    # alpha 0.5: t=4: z = 2.5, p = 2.5; t=8: z = 2.5 + 0.5 * 2.5 = 3.75, p = 2.5 + 0.5 * 1.5 = 3.25
    np.testing.assert_allclose(Croston(horizon=1, alpha=0.5).fit(y).point_forecast(), [[3.75 / 3.25]])
    # q counts from the first finite bucket: NaN NaN 0 4 -> first demand with q = 2 -> 4 / 2
    late = np.array([[NAN, NAN, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(Croston(horizon=1).fit(late).point_forecast(), [[2.0], [0.0]])


def test_tsb_hand_computed() -> None:
    # y = 0 0 3 0 2 0, alpha = beta = 0.1
    # t=2: first demand, q = 3 -> z = 3, d = 1/3
    # t=3: no demand   -> d = 1/3 * 0.9 = 0.3
    # t=4: demand 2    -> d = 0.3 + 0.1 * 0.7 = 0.37, z = 3 + 0.1 (2 - 3) = 2.9
    # t=5: no demand   -> d = 0.333 -> forecast 0.333 * 2.9 = 0.9657
    y = np.array([[0.0, 0.0, 3.0, 0.0, 2.0, 0.0], [5.0, 0.0, 0.0, NAN, NAN, NAN]])
    # second series: z = 5, d = 1 at t=0; d = 0.9, 0.81 after two zeros; NaN skipped -> 4.05
    np.testing.assert_allclose(TSB(horizon=2).fit(y).point_forecast(), [[0.9657, 0.9657], [4.05, 4.05]])


def test_river_holt_winters_additive_init() -> None:
    # season 2, y = 1 3 1 3: init level 2, trend 0, season (-1, +1); the next two updates keep them,
    # so the forecast is 2 - 1, 2 + 1.
    b = RiverTS(horizon=2, season=2, alpha=0.5, beta=0.1, gamma=0.5).fit(np.array([[1.0, 3.0, 1.0, 3.0]]))
    np.testing.assert_allclose(b.point_forecast(), [[1.0, 3.0]])
    # a first season of zeros does not divide by zero (river's own init would)
    z = RiverTS(horizon=2, season=3).fit(np.zeros((1, 9)))
    np.testing.assert_array_equal(z.forecast(), np.zeros((1, 2, 3)))


def test_river_snarimax_runs() -> None:
    rng = np.random.default_rng(1)
    b = RiverTS(horizon=3, season=7, model="snarimax", p=2).fit(rng.poisson(3.0, (3, 20)).astype(float))
    f = b.forecast()
    assert f.shape == (3, 3, 3) and np.isfinite(f).all() and (f >= 0).all()


def test_lightgbm_calendar_and_weekly_pattern() -> None:
    monday = 1_704_067_200  # 2024-01-01T00:00Z, a Monday
    b = LightGBMTweedie(horizon=7, start_epoch=monday, bucket_seconds=86_400, num_threads=1)
    assert b.feature_names[-4:] == ["phase", "dow", "day_of_month", "month"]
    phase, dow, day_of_month, month = b._calendar(np.array([0, 1, 6, 31]))
    np.testing.assert_array_equal(dow, [0, 1, 6, 3])  # 2024-02-01 is a Thursday
    np.testing.assert_array_equal(day_of_month, [1, 2, 7, 1])
    np.testing.assert_array_equal(month, [0, 0, 0, 1])
    np.testing.assert_array_equal(phase, [0, 1, 6, 3])
    # a strong weekly pattern (10 on Saturdays, 1 otherwise) is learnt
    y = np.where(np.arange(84) % 7 == 5, 10.0, 1.0)[None, :].repeat(10, axis=0)
    b = LightGBMTweedie(
        horizon=7, refit_every=28, num_boost_round=30, num_threads=1, start_epoch=monday, params={"min_data_in_leaf": 5}
    ).fit(y)
    p = b.point_forecast()[0]  # targets 84..90; bucket 89 is a Saturday
    assert np.argmax(p) == 5 and p[5] > 5 > p[0]


def test_lightgbm_moving_average_before_first_fit() -> None:
    b = LightGBMTweedie(horizon=2, refit_every=50, windows=(3,), lags=(1,), num_threads=1)
    b.fit(np.array([[1.0, 2.0, 3.0, 7.0]]))
    np.testing.assert_allclose(b.point_forecast(), [[4.0, 4.0]])


# ---------------------------------------------------------------------------------- residual quantiles
def test_quantiles_from_pooled_residuals() -> None:
    # Four series alternating 0/1 (two in each phase): every naive error is +1 or -1, 18 of each over
    # buckets 1..9. np.quantile of 18 x -1 and 18 x +1: q0.1 -> -1, q0.5 -> 0, q0.9 -> +1.
    base = np.arange(10) % 2
    y = np.stack([base, base, 1 - base, 1 - base]).astype(float)
    b = Naive(horizon=1, quantiles=Q, scale="none", residual_min_count=1).fit(y)
    # last values 1, 1, 0, 0 -> (1-1, 1+0, 1+1) and (0-1 clipped to 0, 0, 0+1)
    np.testing.assert_allclose(b.forecast()[:, 0, :], [[0, 1, 2], [0, 1, 2], [0, 0, 1], [0, 0, 1]])


def test_cold_start_quantiles_equal_point() -> None:
    b = Naive(horizon=3).fit(np.array([[2.0, 4.0]]))
    np.testing.assert_array_equal(b.forecast(), np.full((1, 3, 3), 4.0))


def test_residual_sample_is_stable_as_the_panel_grows() -> None:
    rq = ResidualQuantiles(horizon=2, quantiles=Q, max_series=4)
    np.testing.assert_array_equal(rq.sample(3), [0, 1, 2])
    np.testing.assert_array_equal(rq.sample(5), [0, 2, 4])  # stride 2
    np.testing.assert_array_equal(rq.sample(9), [0, 4, 8])  # stride 4 keeps a subset
    np.testing.assert_array_equal(rq.sample(9), [0, 4, 8])


# ------------------------------------------------------------------------------------- contract suite
def contract_panel() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = 45
    y = rng.poisson(np.array([[0.3], [2.0], [8.0], [1.0], [1.0], [1.0]]), size=(6, t)).astype(float)
    y[3] = 0.0  # never sells
    y[4, :20] = NAN  # starts late
    y[5] = NAN  # has not started at all
    y[1, 30:33] = NAN  # a gap of unknown buckets
    return y


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_contract(name: str) -> None:
    y = contract_panel()
    b = build(name, horizon=5).fit(y)
    assert isinstance(b, Baseline) and b.name == name
    assert (b.n_series, b.t) == (6, y.shape[1])
    f = b.forecast()
    assert f.shape == (6, 5, 3)
    assert np.isfinite(f).all() and (f >= 0).all()
    assert (np.diff(f, axis=2) >= 0).all()
    np.testing.assert_array_equal(f[5], 0.0)  # no value yet -> 0
    assert b.point_forecast().shape == (6, 5)
    # deterministic: a fresh instance on the same data gives the same forecast
    np.testing.assert_array_equal(build(name, horizon=5).fit(y).forecast(), f)
    # a pickled snapshot resumes exactly where it was
    copy = pickle.loads(pickle.dumps(b))
    for col in (y[:, -1], y[:, -2]):
        b.update(col)
        copy.update(col)
    np.testing.assert_array_equal(copy.forecast(), b.forecast())


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_contract_new_series_and_other_quantiles(name: str) -> None:
    b = build(name, horizon=3, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95))
    rng = np.random.default_rng(3)
    for j in range(30):
        n = 2 if j < 10 else 4  # two series appear at bucket 10
        b.update(rng.poisson(2.0, n).astype(float))
    f = b.forecast()
    assert f.shape == (4, 3, 5) and np.isfinite(f).all() and (np.diff(f, axis=2) >= 0).all()
    with pytest.raises(ValueError):
        b.update(np.zeros(3))  # fewer series than before


def test_factory() -> None:
    assert BASELINE_NAMES == ("naive", "seasonal_naive", "moving_average", "croston", "tsb", "river", "lightgbm")
    assert make_baseline("seasonal_naive", season=24, horizon=3).season == 24
    assert make_baseline("moving_average", season=7, window=14).window == 14
    with pytest.raises(ValueError):
        make_baseline("prophet", season=7)
    with pytest.raises(ValueError):
        make_baseline("naive", season=7, quantiles=(0.9, 0.1))
