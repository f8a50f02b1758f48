"""Plans reach the model: the forecaster passes the plans of t+1..t+H, the model uses them, the backtest
replays --known fields as plans issued H buckets ahead."""

from __future__ import annotations

import numpy as np
import orjson
import torch

from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.stream.backtest.config import BacktestConfig
from tidecast.stream.backtest.engine import run_rows
from tidecast.stream.backtest.known_plans import with_plans
from tidecast.stream.events import parse_ts
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

DAILY = Buckets(86_400)
D0 = 20_000
T0 = DAILY.start_ms(D0)
DAY = 86_400_000


class PlanSpy:
    """A plan-aware learner that records the plans it is given and forecasts zeros."""

    model_version, min_history, horizon, plan_inputs = 0, 3, 2, True

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int], np.ndarray] = {}

    def learn(self, history, first_seen, stores, skus, t, bucket_seconds, plans=None):
        self.seen[("learn", t)] = plans.copy()
        return {}

    def forecast(self, history, first_seen, stores, skus, t, bucket_seconds, plans=None):
        self.seen[("forecast", t)] = plans.copy()
        return np.zeros((len(history), 2, 1), np.float32), np.zeros((len(history), 2), np.float32)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_the_forecaster_passes_the_plans_of_the_target_buckets() -> None:
    store = MemoryWindowStore()
    sales = PartitionIngestor("sales", 0, DAILY, 0, 30, store.load_partition("sales", 0))
    plans = PartitionIngestor("plans", 0, DAILY, 0, 30, store.load_partition("plans", 0))
    docs = [{"event_id": "p1", "type": "plan", "ts": T0, "for": T0 + 2 * DAY, "store": "s", "sku": "A", "promo": True},
            {"event_id": "p2", "type": "plan", "ts": T0, "for": T0 + 3 * DAY, "store": "s", "open": False}]
    assert store.commit(plans.apply([Record(i, orjson.dumps(d)) for i, d in enumerate(docs)]))
    for day in range(5):
        sale = {"event_id": f"s{day}", "type": "sale", "ts": T0 + day * DAY, "store": "s", "sku": "A", "qty": 1}
        batch = sales.apply([Record(day, orjson.dumps(sale))])
        assert store.commit(batch)
        sales.adopt(batch)
    spy, sink = PlanSpy(), MemorySink()
    config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=7, quantiles=(0.5,),
                              inputs=("sales:0",))
    loop = Forecaster(config, store, spy, sink, MemoryCheckpoints(), lambda s: b"", dict)
    loop.step()
    assert loop.last_closed == D0 + 3
    at_d0 = spy.seen[("forecast", D0)]  # columns D0-2 .. D0 (the panel), then D0+1, D0+2
    assert at_d0.shape == (1, 5, 8)
    assert at_d0[0, :, 0].tolist() == [0, 0, 0, 0, 1] and at_d0[0, :, 1].tolist() == [0, 0, 0, 0, 1]
    at_d1 = spy.seen[("learn", D0 + 1)]  # D0+2 promo (series plan), D0+3 closed (store plan)
    assert at_d1[0, -2:, 0].tolist() == [1, 0] and at_d1[0, -1, 4:6].tolist() == [0, 1]
    at_d3 = spy.seen[("learn", D0 + 3)]  # the closed buckets keep the plans known when they were forecast
    assert at_d3[0, 1, 0] == 1 and at_d3[0, 2, 5] == 1 and not at_d3[0, -2:].any()
    hashes = sink.plans
    assert hashes[0][0] is not None and hashes[1][0] not in (None, hashes[0][0]) and hashes[3] == [None]


def test_a_restart_reads_the_plans_again() -> None:
    store = MemoryWindowStore()
    plans = PartitionIngestor("plans", 0, DAILY, 0, 30, store.load_partition("plans", 0))
    doc = {"event_id": "p", "type": "plan", "ts": T0, "for": T0 + 2 * DAY, "store": "s", "promo": True}
    assert store.commit(plans.apply([Record(0, orjson.dumps(doc))]))
    spy = PlanSpy()
    loop = Forecaster(ForecasterConfig(86_400, 0, 7, (0.5,), ("sales:0",)), store, spy, MemorySink(),
                      MemoryCheckpoints(), lambda s: b"", dict)
    loop.plans.advance(D0 + 3, store, ["s:A"])  # as after a restart at D0+3: the history columns are read too
    assert loop.plans.window()[0, :, 0].tolist() == [0, 1, 0, 0, 0]


def synthetic(series: int, days: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Daily units with promotions (a fifth of the days) that triple demand; returns (history, promo)."""
    rng = np.random.default_rng(seed)
    promo = rng.random((series, days)) < 0.2
    base = rng.uniform(3, 8, (series, 1))
    units = rng.poisson(base * np.where(promo, 3.0, 1.0)).astype(np.float32)
    history = np.zeros((series, days, 7), np.float32)
    history[:, :, 0], history[:, :, 1] = units, (units > 0)
    return history, promo


def planned(promo: np.ndarray, lo: int, hi: int) -> np.ndarray:
    out = np.zeros((promo.shape[0], hi - lo, 8), np.float32)
    out[..., 0], out[..., 1] = promo[:, lo:hi], 1.0
    return out


def test_the_model_forecasts_more_with_a_promotion_planned() -> None:
    torch.manual_seed(0)
    cfg = LearnerConfig(horizon=3, lags=8, aux_lags=2, scale_window=8, hidden=32, batch_size=128, steps_per_learn=4,
                        max_steps_per_learn=4, replay_capacity=2048, sku_buckets=64, store_buckets=8, plans=True,
                        lr=3e-3)
    learner = OnlineLearner(cfg)
    length, h = learner.min_history, cfg.horizon
    history, promo = synthetic(series=60, days=160)
    seen, stores, skus = np.zeros(60, np.int64), ["s"] * 60, [f"k{i}" for i in range(60)]
    for t in range(length, 150):
        window = history[:, t - length + 1 : t + 1]
        learner.learn(window, seen, stores, skus, t, 86_400, plans=planned(promo, t - length + 1, t + 1 + h))
    t = 150
    window = history[:, t - length + 1 : t + 1]
    promo_now = promo.copy()
    promo_now[:, t + 1 : t + 1 + h] = True
    with_promo = learner.forecast(window, seen, stores, skus, t, 86_400,
                                  plans=planned(promo_now, t - length + 1, t + 1 + h)).mean
    promo_now[:, t + 1 : t + 1 + h] = False
    without = learner.forecast(window, seen, stores, skus, t, 86_400,
                               plans=planned(promo_now, t - length + 1, t + 1 + h)).mean
    assert with_promo.mean() > 1.8 * without.mean()


def test_known_fields_are_planned_h_buckets_ahead_and_stay_in_order() -> None:
    rows = [{"event_id": f"{d}", "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "store": "s", "sku": "all",
             "qty": 1, "promo": d % 2 == 0} for d in range(1, 11)]
    out = list(with_plans(rows, ("promo",), DAILY, horizon=3))
    times = [DAILY.index(parse_ts(r["ts"])) for r in out]
    assert times == sorted(times) and len(out) == 20
    for doc in out:
        if doc["type"] == "plan":
            assert DAILY.index(parse_ts(doc["for"])) - DAILY.index(doc["ts"]) == 3
            assert doc["promo"] == (int(doc["event_id"].split(":")[1]) % 2 == 0)


def _rows() -> list[dict]:
    rng = np.random.default_rng(1)
    rows = []
    for d in range(120):
        day = np.datetime64("2024-01-01") + d
        for store in ("a", "b", "c"):
            promo = bool(rng.random() < 0.3)
            rows.append({"event_id": f"{store}{d}", "type": "sale", "ts": f"{day}T12:00:00+00:00", "store": store,
                         "sku": "all", "qty": int(rng.poisson(15 if promo else 5)) + 1, "promo": promo})
    return rows


def test_backtest_with_known_passes_plans_and_without_changes_nothing() -> None:
    torch.set_num_threads(1)
    small = {"horizon": 3, "lags": 8, "aux_lags": 2, "scale_window": 8, "hidden": 16, "batch_size": 64,
             "replay_capacity": 512, "sku_buckets": 64, "store_buckets": 8}
    rows = _rows()
    plain = BacktestConfig(horizon=3, warmup=6, baselines=("naive",), learner=LearnerConfig(**small))
    known = BacktestConfig(horizon=3, warmup=6, baselines=("naive",), learner=LearnerConfig(**small, plans=True),
                           known=("promo",))
    a = run_rows(lambda sorting: rows, plain, MemoryWindowStore)
    b = run_rows(lambda sorting: rows, plain, MemoryWindowStore)
    c = run_rows(lambda sorting: rows, known, MemoryWindowStore)
    assert a.models["tidecast"] == b.models["tidecast"] and "plans" not in a.counts
    assert c.counts["plans"] == c.counts["plans_ingested"] == len(rows) == c.counts["rows"]
    assert c.models["naive"] == a.models["naive"]  # the baselines see the same sales
    assert c.models["tidecast"]["mase"] < a.models["tidecast"]["mase"]  # promotions tripled demand, known ahead


def test_a_step_planned_closed_is_zero_untrained_and_not_learned_from() -> None:
    """A closed store sells nothing: a step planned closed is forecast 0 (quantiles and mean, calibrated
    or not) from the first close, and its label, whatever it says, moves nothing."""
    cfg = LearnerConfig(horizon=3, lags=8, aux_lags=2, scale_window=8, hidden=16, batch_size=64,
                        replay_capacity=64, sku_buckets=64, store_buckets=8, plans=True)
    learner = OnlineLearner(cfg)
    history = np.random.default_rng(0).poisson(5.0, (4, learner.min_history, 7)).astype(np.float32)
    seen, stores, skus, t = np.zeros(4, np.int64), ["s"] * 4, ["a", "b", "c", "d"], 40
    plans = np.zeros((4, learner.min_history + cfg.horizon, 8), np.float32)
    plans[:, :, 4:6] = [1.0, 1.0]  # open, known
    plans[:, -2, 4] = 0.0  # ... but closed on step 2 of the forecast
    fc = learner.forecast(history, seen, stores, skus, t, 86_400, plans=plans)
    assert (fc.quantiles[:, 1] == 0).all() and (fc.mean[:, 1] == 0).all()
    assert (fc.quantiles[:, [0, 2], 1] > 0).all() and (fc.mean[:, [0, 2]] > 0).all()
    closed_label = plans.copy()
    closed_label[:, : learner.min_history, 4] = 0.0  # every label it learns from is planned closed
    before = [p.detach().clone() for p in learner.model.parameters()]
    learner.learn(history, seen, stores, skus, t, 86_400, plans=closed_label)
    assert all(torch.equal(a, p) for a, p in zip(before, learner.model.parameters(), strict=True))
    assert not learner.calibrator.offsets.any()


def test_the_plan_path_of_a_sample_without_plans_is_computed_once_and_is_the_same() -> None:
    from torch import nn

    from tidecast.models.network import _per_step

    torch.manual_seed(0)
    path = nn.Sequential(nn.Linear(10 + 16, 8), nn.ReLU(), nn.Linear(8, 4))
    hidden = torch.randn(6, 16, requires_grad=True)
    plans = torch.zeros(6, 5, 10)
    plans[[1, 4], 2] = torch.randn(2, 10)  # two samples planned, four not

    def every_step(hidden: torch.Tensor) -> torch.Tensor:  # the definition: each step's cat([plan, hidden])
        return path(torch.cat([plans, hidden[:, None, :].expand(-1, 5, -1)], dim=-1))

    expected, got = every_step(hidden), _per_step(path, plans, hidden)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    grad_expected = torch.autograd.grad(expected.square().sum(), hidden)[0]
    grad_got = torch.autograd.grad(got.square().sum(), hidden)[0]
    torch.testing.assert_close(grad_got, grad_expected, rtol=1e-5, atol=1e-6)
    for only in (torch.zeros(6, 5, 10), torch.randn(6, 5, 10)):  # none planned, all planned
        plans = only
        torch.testing.assert_close(_per_step(path, plans, hidden), every_step(hidden), rtol=1e-5, atol=1e-6)
