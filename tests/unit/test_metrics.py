"""Metrics: hand-computed cases for every metric (one origin, then several: per origin, then the mean over
origins), the M5 weights, and property tests for their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tidecast.models.metrics import RunningScales, Scorer, history_scales
from tidecast.models.quantiles import interval80_pair, median_index

Q = (0.1, 0.5, 0.9)
NAN = float("nan")


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------------------------- scales
def test_history_scales_start_at_first_nonzero_sale() -> None:
    y = np.array(
        [
            [0.0, 0.0, 2.0, 0.0, 1.0, NAN],  # from index 2: diffs -2, 1 -> mae 1.5, mse (4+1)/2 = 2.5
            [NAN, NAN, 0.0, 3.0, 3.0, 5.0],  # from index 3: diffs 0, 2 -> mae 1, mse 2
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # never sold -> NaN
            [0.0, 0.0, 0.0, 0.0, 0.0, 7.0],  # one point since the first sale -> NaN
            [0.0, 4.0, 4.0, 4.0, 4.0, 4.0],  # constant -> zero scale
        ]
    )
    mae, mse = history_scales(y)
    np.testing.assert_allclose(mae, [1.5, 1.0, NAN, NAN, 0.0])
    np.testing.assert_allclose(mse, [2.5, 2.0, NAN, NAN, 0.0])


def test_history_scales_too_short_history() -> None:
    mae, mse = history_scales(np.array([[3.0], [1.0]]))
    assert np.isnan(mae).all() and np.isnan(mse).all()
    with pytest.raises(ValueError):
        history_scales(np.zeros(4))


panel = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
    elements=st.one_of(st.just(NAN), st.just(0.0), st.integers(0, 9).map(float)),
)


@settings(max_examples=60, deadline=None)
@given(panel)
def test_running_scales_equal_history_scales(y: np.ndarray) -> None:
    rs = RunningScales()
    for j in range(y.shape[1]):
        rs.update(y[:, j])
    for got, want in zip(rs.scales(), history_scales(y), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_running_scales_grow_with_new_series() -> None:
    rs = RunningScales()
    rs.update(np.array([1.0]))
    rs.update(np.array([3.0, 0.0]))  # series 1 appears
    rs.update(np.array([2.0, 5.0]))
    mae, _ = rs.scales()  # series 0: diffs 2, -1; series 1: only one point since its first sale
    np.testing.assert_allclose(mae, [1.5, NAN])
    with pytest.raises(ValueError):
        rs.update(np.array([1.0]))


# ------------------------------------------------------------------------------------ quantile helpers
def test_median_and_interval_pair() -> None:
    assert median_index(Q) == 1
    assert median_index((0.2, 0.4, 0.7)) == 1
    assert interval80_pair(Q) == (0, 2)
    assert interval80_pair((0.05, 0.1, 0.15, 0.85, 0.9, 0.95)) == (1, 4)  # the symmetric one
    assert interval80_pair((0.1, 0.5)) is None


# ------------------------------------------------------------------------------------ hand-made case
# Two series, H = 2, quantiles (0.1, 0.5, 0.9); e = median - actual.
#
# A: scales s1 = 2, s2 = 4. Step 1: q = (1, 2, 4), y = 3. Step 2: q = (0, 2, 3), y = 1.
#    e = -1, +1 -> MAE 1, RMSE 1, bias 0, MASE mean(1/2, 1/2) = 0.5, RMSSE sqrt(mean(1/4, 1/4)) = 0.5.
#    pinball step 1 (y=3): 0.1*2 = 0.2, 0.5*1 = 0.5, 0.1*1 = 0.1  -> mean 0.8/3
#    pinball step 2 (y=1): 0.1*1 = 0.1, 0.5*1 = 0.5, 0.1*2 = 0.2  -> mean 0.8/3
#    SPL = mean(0.8/3, 0.8/3) / 2 = 0.4/3 = 0.1333.  Coverage: 3 in [1, 4], 1 in [0, 3] -> 1.
# B: scales s1 = 1, s2 = 1. Step 1: q = (0, 0, 1), y = 0. Step 2: q = (0, 1, 2), y = 4.
#    e = 0, -3 -> MAE 1.5, RMSE sqrt(9/2) = 2.1213, bias -1.5, MASE 1.5, RMSSE 2.1213.
#    pinball step 1 (y=0): 0, 0, 0.1*1 = 0.1          -> mean 0.1/3
#    pinball step 2 (y=4): 0.1*4, 0.5*3, 0.9*2 = 0.4, 1.5, 1.8  -> mean 3.7/3
#    SPL = (0.1/3 + 3.7/3) / 2 = 1.9/3 = 0.6333.  Coverage: 0 in [0, 1], 4 not in [0, 2] -> 0.5.
# One origin: every metric is the per-series figure over its H steps, averaged over the series.
# Equal weights: MAE 1.25, RMSE (1 + 2.1213)/2, bias -0.75, MASE 1, RMSSE (0.5 + 2.1213)/2,
#   coverage 0.75, WSPL (0.1333 + 0.6333)/2 = 1.15/3.
# Weights known at the origin (sales before it) A = 8, B = 4 -> 2/3, 1/3:
#   WRMSSE = 2/3*0.5 + 1/3*2.1213, WSPL = 2/3*0.4/3 + 1/3*1.9/3 = 0.3.
# Per step (the same weights; one point per series): step 1 MAE (1 + 0)/2 = 0.5, RMSSE_A = |-1|/2 = 0.5,
#   RMSSE_B = 0 -> WRMSSE 2/3*0.5 = 1/3; step 2 MAE (1 + 3)/2 = 2, RMSSE 0.5 and 3 -> WRMSSE 1/3 + 1 = 4/3.
F = np.array([[[1.0, 2.0, 4.0], [0.0, 2.0, 3.0]], [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0]]])
Y = np.array([[3.0, 1.0], [0.0, 4.0]])
S1 = np.array([2.0, 1.0])
S2 = np.array([4.0, 1.0])
R2 = math.sqrt(4.5)
W = np.array([8.0, 4.0])


def test_hand_case_without_price_uses_equal_weights() -> None:
    sc = Scorer(2, Q)
    assert sc.add(F, Y, S1, S2) == 4
    r = sc.result()
    assert r["mae"] == approx(1.25)
    assert r["rmse"] == approx((1 + R2) / 2)
    assert r["bias"] == approx(-0.75)
    assert r["bias_scaled"] == approx((0.0 + -1.5) / 2)  # A: mean(-1/2, 1/2) = 0; B: mean(0, -3) = -1.5
    assert r["mase"] == approx(1.0)
    assert r["rmsse"] == approx((0.5 + R2) / 2)
    assert r["wrmsse"] == approx((0.5 + R2) / 2)
    assert r["wspl"] == approx(1.15 / 3)
    assert r["coverage80"] == approx(0.75)
    assert r["coverage80_quantiles"] == [0.1, 0.9]
    assert (r["scored"], r["series"], r["origins"], r["scaled_pairs"], r["excluded_zero_scale"]) == (4, 2, 1, 2, 0)
    assert r["per_origin"]["origin"] == [0] and r["per_origin"]["mae"] == [approx(1.25)]


def test_hand_case_with_weights() -> None:
    sc = Scorer(2, Q)
    sc.add(F, Y, S1, S2, weights=W)
    r = sc.result()
    assert r["wrmsse"] == approx(2 / 3 * 0.5 + 1 / 3 * R2)
    assert r["wspl"] == approx(0.3)
    assert r["mae"] == approx(1.25)  # unweighted metrics do not change
    step1, step2 = r["per_horizon"]
    assert (step1["step"], step1["origins"], step1["mae"], step1["wrmsse"]) == (1, 1, approx(0.5), approx(1 / 3))
    assert step1["rmsse"] == approx((0.5 + 0.0) / 2)
    assert (step2["mae"], step2["wrmsse"]) == (approx(2.0), approx(4 / 3))
    assert step2["coverage80"] == approx(0.5)


# Means: A = (3, 1) (exact), B = (1, 2): e_mean = 0, 0 for A and +1, -2 for B.
#   Squared-error metrics and bias move to the mean, absolute ones stay on the median:
#   RMSE_B = sqrt((1 + 4)/2) = 1.5811, RMSSE_B the same (s2 = 1); RMSE_A = RMSSE_A = 0; bias_B = -0.5.
#   MAE, MASE, WSPL and coverage are those of the median case above.
MEANS = np.array([[3.0, 1.0], [1.0, 2.0]])


def test_hand_case_with_means_scores_squared_errors_and_bias_on_the_mean() -> None:
    sc = Scorer(2, Q)
    sc.add(F, Y, S1, S2, weights=W, means=MEANS)
    r = sc.result()
    rb = math.sqrt(2.5)
    assert (r["rmse"], r["rmsse"], r["wrmsse"]) == (approx(rb / 2), approx(rb / 2), approx(1 / 3 * rb))
    assert r["bias"] == approx(-0.25) and r["bias_scaled"] == approx(-0.25)
    assert (r["mae"], r["mase"], r["wspl"], r["coverage80"]) == (approx(1.25), approx(1.0), approx(0.3), approx(0.75))
    live = Scorer(2, Q)
    live.issue(0, F, S1, S2, means=MEANS, weights=W)
    live.observe(0, Y[:, 0])
    live.observe(1, Y[:, 1])
    assert live.result() == r
    with pytest.raises(ValueError):
        sc.add(F, Y, S1, S2, means=MEANS[:, :1])  # one mean per step
    with pytest.raises(ValueError):
        sc.add(F, Y, S1, S2, means=np.full((2, 2), NAN))


def test_zero_weights_are_excluded_and_counted() -> None:
    sc = Scorer(2, Q)
    sc.add(F, Y, S1, S2, weights=np.array([0.0, 5.0]))  # A sold nothing before the origin: B alone
    r = sc.result()
    assert (r["wrmsse"], r["wspl"], r["excluded_zero_weight"]) == (approx(R2), approx(1.9 / 3), 1)
    assert r["rmsse"] == approx((0.5 + R2) / 2)  # the unweighted mean keeps A
    none = Scorer(2, Q)
    none.add(F, Y, S1, S2, weights=np.zeros(2))
    assert math.isnan(none.result()["wrmsse"]) and none.result()["excluded_zero_weight"] == 2
    with pytest.raises(ValueError):
        Scorer(2, Q).add(F, Y, S1, S2, weights=np.array([-1.0, 1.0]))


# Several origins: one series, H = 2, scales 1, forecast 0 (median and mean); actuals y = (1, 1, 7).
#   Origin 0 targets (1, 1): RMSSE sqrt((1 + 1)/2) = 1, MASE 1.  Origin 1 targets (1, 7): RMSSE
#   sqrt((1 + 49)/2) = 5, MASE 4.  WRMSSE = mean over origins = (1 + 5)/2 = 3, MASE 2.5; pooling the four
#   points before the root, as before issue 10, gave sqrt(52/4) = 3.61: one bulk order weighed on both.
#   Per step: step 1 |e| 1, 1 -> 1; step 2 |e| 1, 7 -> 4.  Origin 2 (targets 2, 3) never completes.
F0 = np.zeros((1, 2, 3))


def test_metrics_are_per_origin_then_averaged_over_origins() -> None:
    sc = Scorer(2, Q)
    for origin in (0, 1, 2):
        sc.issue(origin, F0, [1.0], [1.0], weights=[1.0])
    assert [sc.observe(t, np.array([v])) for t, v in enumerate((1.0, 1.0, 7.0))] == [1, 2, 2]
    r = sc.result()
    assert (r["wrmsse"], r["rmsse"], r["mase"], r["mae"]) == (approx(3.0), approx(3.0), approx(2.5), approx(2.5))
    assert r["per_origin"]["origin"] == [0, 1] and r["per_origin"]["wrmsse"] == [approx(1.0), approx(5.0)]
    assert (r["origins"], r["scored"], r["pairs"], sc.n_pending) == (2, 4, 2, 1)  # origin 2 still open
    assert [p["mae"] for p in r["per_horizon"]] == [approx(1.0), approx(4.0)]
    assert [p["rmse"] for p in r["per_horizon"]] == [approx(1.0), approx(4.0)]
    batch = Scorer(2, Q)
    batch.add(F0, np.array([[1.0, 1.0]]), [1.0], [1.0])
    batch.add(F0, np.array([[1.0, 7.0]]), [1.0], [1.0])
    assert batch.result()["wrmsse"] == approx(3.0) and batch.result()["per_origin"]["origin"] == [0, 1]
    with pytest.raises(ValueError):
        sc.issue(2, F0, [1.0], [1.0])  # an origin is issued once


def test_weights_change_from_origin_to_origin() -> None:
    # Two series, H = 1, scales 1, forecast 0. Origin 0: y = (1, 3), weights (1, 0) -> WRMSSE 1.
    # Origin 1: y = (2, 2), weights (1, 3) -> 1/4*2 + 3/4*2 = 2. Mean 1.5; the unweighted RMSSE (2 + 2)/2 = 2 at 1.
    sc = Scorer(1, Q)
    f = np.zeros((2, 1, 3))
    sc.add(f, np.array([[1.0], [3.0]]), [1.0, 1.0], [1.0, 1.0], weights=[1.0, 0.0])
    sc.add(f, np.array([[2.0], [2.0]]), [1.0, 1.0], [1.0, 1.0], weights=[1.0, 3.0])
    r = sc.result()
    assert r["per_origin"]["wrmsse"] == [approx(1.0), approx(2.0)] and r["wrmsse"] == approx(1.5)
    assert r["rmsse"] == approx((2.0 + 2.0) / 2) and r["excluded_zero_weight"] == 1


def test_streaming_issue_observe_equals_batch_add() -> None:
    batch = Scorer(2, Q)
    batch.add(F, Y, S1, S2, weights=W, origin=10)
    live = Scorer(2, Q)
    live.issue(10, F, S1, S2, series_idx=np.array([0, 1]), weights=W)
    assert live.n_pending == 4
    assert live.observe(9, np.array([5.0, 5.0])) == 0  # nothing targets bucket 9
    assert live.observe(10, Y[:, 0]) == 2
    assert live.observe(11, Y[:, 1]) == 2
    assert live.n_pending == 0
    assert live.result() == batch.result()


def test_unknown_actuals_are_not_scored_and_series_grow() -> None:
    sc = Scorer(1, Q)
    sc.issue(0, np.array([[[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]]]), [1.0, 1.0], [1.0, 1.0], series_idx=[3, 7])
    assert sc.n_series == 8
    actual = np.full(8, NAN)
    actual[7] = 4.0  # series 3 has not started: its point is dropped
    assert sc.observe(0, actual) == 1
    r = sc.result()
    assert (r["scored"], r["series"], r["mae"]) == (1, 1, 3.0)


def test_zero_and_missing_scales_are_excluded_and_counted() -> None:
    # Series 0: valid scale; series 1: zero scale; series 2: NaN scale (history too short).
    f = np.array([[[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]], [[2.0, 2.0, 2.0]]])
    y = np.array([[3.0], [1.0], [2.0]])
    sc = Scorer(1, Q)
    sc.add(f, y, [2.0, 0.0, NAN], [4.0, 0.0, NAN])
    r = sc.result()
    assert r["mae"] == approx((2 + 1 + 0) / 3)  # unscaled metrics keep every series
    assert r["mase"] == approx(1.0)  # only series 0: |1 - 3| / 2
    assert r["rmsse"] == approx(1.0)  # sqrt(4 / 4)
    assert (r["scaled_pairs"], r["excluded_zero_scale"]) == (1, 2)


def test_no_interval_pair_and_empty_scorer() -> None:
    sc = Scorer(1, (0.5,))
    assert math.isnan(sc.result()["mae"]) and sc.result()["scored"] == 0
    sc.add(np.array([[[1.0]]]), np.array([[3.0]]), [1.0], [1.0])
    r = sc.result()
    assert math.isnan(r["coverage80"]) and r["coverage80_quantiles"] is None
    assert r["wspl"] == approx(1.0)  # 0.5 * |1 - 3| / 1


def test_bad_input_is_rejected() -> None:
    sc = Scorer(2, Q)
    with pytest.raises(ValueError):
        sc.add(np.zeros((1, 3, 3)), np.zeros((1, 3)), [1.0], [1.0])  # wrong horizon
    with pytest.raises(ValueError):
        sc.add(np.full((1, 2, 3), NAN), np.zeros((1, 2)), [1.0], [1.0])  # NaN forecast
    with pytest.raises(ValueError):
        sc.add(np.zeros((1, 2, 3)), np.zeros((2, 2)), [1.0], [1.0])  # actuals shape
    with pytest.raises(ValueError):
        Scorer(2, (0.5, 0.1))


# ------------------------------------------------------------------------------------------ properties
@st.composite
def scored_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 6))
    h = draw(st.integers(1, 4))
    vals = st.floats(0, 50, allow_nan=False, width=32)
    f = np.sort(draw(hnp.arrays(np.float64, (n, h, 3), elements=vals)), axis=2)
    y = draw(hnp.arrays(np.float64, (n, h), elements=vals))
    s1 = draw(hnp.arrays(np.float64, n, elements=st.floats(0.125, 10)))
    price = draw(hnp.arrays(np.float64, (n, h), elements=st.floats(0.5, 20)))
    return f, y, s1, price


@settings(max_examples=80, deadline=None)
@given(scored_case())
def test_perfect_forecast_scores_zero(case: tuple) -> None:
    _, y, s1, price = case
    f = np.repeat(y[:, :, None], 3, axis=2)
    sc = Scorer(y.shape[1], Q)
    sc.add(f, y, s1, s1**2, weights=price[:, 0])  # positive weights: sales before the origin
    r = sc.result()
    for k in ("mae", "rmse", "mase", "rmsse", "wrmsse", "wspl", "bias", "bias_scaled"):
        assert r[k] == 0.0
    assert r["coverage80"] == 1.0


@settings(max_examples=80, deadline=None)
@given(scored_case(), st.floats(0.01, 100))
def test_scaled_metrics_are_unit_free(case: tuple, c: float) -> None:
    f, y, s1, price = case
    h = y.shape[1]
    a, b = Scorer(h, Q), Scorer(h, Q)
    revenue = price[:, 0]  # dollar sales before the origin: units x c at price / c is the same revenue
    a.add(f, y, s1, s1**2, weights=revenue)
    b.add(f * c, y * c, s1 * c, (s1 * c) ** 2, weights=revenue)
    ra, rb = a.result(), b.result()
    for k in ("mase", "rmsse", "wrmsse", "wspl", "coverage80", "bias_scaled"):
        assert rb[k] == pytest.approx(ra[k], rel=1e-6, abs=1e-9)
    assert rb["mae"] == pytest.approx(c * ra["mae"], rel=1e-6, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(scored_case())
def test_ranges_and_median_only_spl(case: tuple) -> None:
    f, y, s1, price = case
    sc = Scorer(y.shape[1], Q)
    sc.add(f, y, s1, s1**2, weights=price[:, 0])
    r = sc.result()
    assert 0.0 <= r["coverage80"] <= 1.0
    assert r["rmse"] >= r["mae"] - 1e-9  # per series RMSE >= MAE
    assert min(r["mae"], r["mase"], r["wrmsse"], r["wspl"]) >= 0.0
    # With the single quantile 0.5, pinball = |e| / 2, so WSPL (equal weights) = MASE / 2.
    one = Scorer(y.shape[1], (0.5,))
    one.add(f[:, :, 1:2], y, s1, s1**2)
    assert one.result()["wspl"] == pytest.approx(one.result()["mase"] / 2, rel=1e-9, abs=1e-12)
