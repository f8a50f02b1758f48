"""The baselines get the plans tidecast gets (``backtest --known``): LightGBM and river read them as inputs,
every baseline forecasts a bucket planned closed as 0, and without plans nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tidecast.models.baselines import BASELINE_NAMES, make_baseline
from tidecast.models.learner import LearnerConfig
from tidecast.stream.backtest.config import BacktestConfig
from tidecast.stream.backtest.engine import run_rows
from tidecast.stream.backtest.plan_feed import PlanReceiver, PlanSender
from tidecast.stream.backtest.result import BacktestResult
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

STORES = ("a", "b", "c", "d")
SMALL = {"horizon": 7, "lags": 8, "aux_lags": 2, "scale_window": 8, "hidden": 8, "batch_size": 32,
         "replay_capacity": 256, "sku_buckets": 64, "store_buckets": 8}
BASELINES = ("naive", "seasonal_naive", "moving_average", "croston", "tsb", "river", "lightgbm")
# The figures of BASELINES on rows() without --known before the baselines took plans (commit c84a5b0): the
# same code path must give the same figures. LightGBM's were taken again when it got the day of the month.
BEFORE = {
    "naive": (1.0648960505113303, 0.9841552344825581, 0.3198360929601343, 0.780454042081949),
    "seasonal_naive": (1.0134891380052988, 0.9549470049866831, 0.2996102346206849, 0.784330011074197),
    "moving_average": (0.7898285009740199, 0.7437182529673482, 0.24360781322918723, 0.7782392026578073),
    "croston": (0.7970046181063093, 0.7449629359742714, 0.24441541126930608, 0.7915282392026578),
    "tsb": (0.79666814127293, 0.7441276390857829, 0.24422495359378193, 0.7890365448504982),
    "river": (0.8596916885359297, 0.7778165282557757, 0.25508131262423184, 0.8067552602436324),
    "lightgbm": (0.8439394033540528, 0.7764707218321562, 0.2559077423279553, 0.771594684385382),
}


def rows(days: int = 150, seed: int = 3) -> list[dict]:
    """Four stores: promotions (planned ahead) triple demand; random closed days sell nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(days):
        day = np.datetime64("2024-01-01") + d
        for k, store in enumerate(STORES):
            promo = bool(rng.random() < 0.3)
            is_open = bool(rng.random() > 0.1)
            mean = (10 + 5 * k) * (3 if promo else 1) * (1.3 if d % 7 == 5 else 1.0)
            qty = int(rng.poisson(mean)) + 1 if is_open else 0
            out.append({"event_id": f"{store}{d}", "type": "sale", "ts": f"{day}T12:00:00+00:00", "store": store,
                        "sku": "all", "qty": qty, "promo": promo, "open": is_open})
    return out


def backtest(known: tuple[str, ...], workers: int = 0, baselines: tuple[str, ...] = BASELINES) -> BacktestResult:
    torch.set_num_threads(1)
    config = BacktestConfig(horizon=7, warmup=14, baselines=baselines, workers=workers, known=known,
                            learner=LearnerConfig(**SMALL, plans=bool(known)), keep_forecasts=bool(known))
    return run_rows(lambda sorting: rows(), config, MemoryWindowStore)


@pytest.fixture(scope="module")
def plain() -> BacktestResult:
    return backtest(())


@pytest.fixture(scope="module")
def known() -> BacktestResult:
    return backtest(("promo", "open"))


def figures(result: BacktestResult, name: str) -> tuple[float, ...]:
    m = result.models[name]
    return m["mase"], m["wrmsse"], m["wspl"], m["coverage80"]


@pytest.mark.parametrize("name", BASELINES)
def test_without_known_every_baseline_scores_as_before(plain: BacktestResult, name: str) -> None:
    assert figures(plain, name) == pytest.approx(BEFORE[name], rel=1e-9, abs=1e-12)


def test_known_promotions_make_lightgbm_and_river_better(plain: BacktestResult, known: BacktestResult) -> None:
    for name in ("lightgbm", "river"):
        assert known.models[name]["mase"] < 0.8 * plain.models[name]["mase"], name
        assert known.models[name]["wspl"] < plain.models[name]["wspl"], name


def test_a_day_planned_closed_is_forecast_zero_by_every_baseline(known: BacktestResult) -> None:
    days = Buckets(86_400)
    closed = {(STORES.index(r["store"]), days.index(np.datetime64(r["ts"][:19]).astype("datetime64[ms]").astype(int)))
              for r in rows() if not r["open"]}
    assert known.forecasts is not None and len(closed) > 30
    checked = 0
    for name in BASELINES:
        for origin, f in known.forecasts[name].items():
            for series, bucket in closed:
                step = bucket - origin
                if 0 <= step < f.shape[1] and series < f.shape[0]:
                    assert (f[series, step] == 0).all(), (name, origin, series, bucket)
                    checked += 1
    assert checked > 1000


def test_the_plans_reach_a_worker_as_in_this_process(known: BacktestResult) -> None:
    # without lightgbm: a process forked after LightGBM ran OpenMP threads here may hang in its own (libgomp)
    names = tuple(name for name in BASELINES if name != "lightgbm")
    worker = backtest(("promo", "open"), workers=1, baselines=names)
    for name in names:
        assert worker.models[name] == known.models[name], name


def test_a_planned_closing_zeroes_every_baseline_given_plans() -> None:
    y = np.array([[5.0, 6.0, 7.0, 5.0, 6.0, 7.0, 5.0, 6.0]])
    plans = np.zeros((1, 2, 8), np.float32)
    plans[0, :, 5] = 1.0
    plans[0, 0, 4] = 1.0  # open next bucket, closed the one after
    for name in BASELINE_NAMES:
        b = make_baseline(name, season=2, horizon=2, quantiles=(0.1, 0.5, 0.9))
        for j in range(y.shape[1]):
            b.update(y[:, j], plans=plans)
        assert (b.forecast()[0, 1] == 0).all() and b.point_forecast()[0, 1] == 0, name
        assert b.point_forecast()[0, 0] > 0, name


def test_the_plan_feed_sends_what_changed() -> None:
    rng = np.random.default_rng(0)
    sender, receiver = PlanSender(), PlanReceiver()
    window = rng.random((5, 4, 8)).astype(np.float32)
    for step in range(6):
        grown = np.concatenate([window, rng.random((step % 2, 4, 8)).astype(np.float32)])
        window = np.concatenate([grown[:, 1:], rng.random((grown.shape[0], 1, 8)).astype(np.float32)], axis=1)
        if step == 3:
            window[2, 0] = 9.0  # a revised plan
        assert (receiver.decode(sender.encode(window)) == window).all()
