"""The backtest's replenishment replay (``--simulate``): the shelf as series join, the baselines' safety stock,
and every model's outcome per service level in the result."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from tidecast.cli import main
from tidecast.models.learner import LearnerConfig
from tidecast.models.replenishment import Policy, Shelf
from tidecast.stream.backtest.config import BacktestConfig
from tidecast.stream.backtest.engine import run_rows
from tidecast.stream.backtest.inventory import InventoryReplay, SafetyStock
from tidecast.stream.backtest.report import summary, write_report
from tidecast.stream.window_store import MemoryWindowStore

torch.set_num_threads(1)

SMALL = LearnerConfig(horizon=4, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16, replay_capacity=64,
                      sku_buckets=64, store_buckets=8)


def test_a_series_is_measured_from_its_first_arrival_and_steady_demand_is_all_served() -> None:
    # lead 1, review 1: orders of the close of t arrive at the start of t + 2; level 4 = 2 buckets of 2 units
    replay = InventoryReplay(Policy(lead=1, review=1, services=(0.9,)), ["m"])
    for t in range(10):
        units = np.array([2.0] if t < 3 else [2.0, 2.0])  # a second series appears at bucket 3
        replay.close(t, units, {"m": np.full((len(units), 1), 4.0)}, scored=True)
    out = replay.outcome(10)["m"][0]
    shelf = replay.shelves["m"][0]
    # first series: joins at close 0, first arrival in bucket 2: buckets 2..9 measured; second: 5..9
    assert shelf.measured == 8 + 5 and out["stockouts"] == 0 and out["fill_rate"] == 1.0
    assert shelf.demanded == 2.0 * 13 and out["cycle_service"] == 1.0


def test_nothing_joins_before_the_first_scored_origin() -> None:
    replay = InventoryReplay(Policy(lead=0, review=1, services=(0.5,)), ["m"])
    replay.close(0, np.array([5.0]), {"m": np.zeros((1, 1))}, scored=False)
    assert len(replay.shelves["m"][0]) == 0


def test_reviews_every_few_buckets_order_only_then() -> None:
    shelf = Shelf(lead=0, review=3)
    shelf.add(1, anchor=3, begin=3)
    orders = []
    for b in range(9):
        shelf.bucket(b, np.array([1.0]))
        before = shelf.on_order.copy()
        if b % 3 == 2:
            shelf.review(b, np.array([3.0]))
        orders.append(float(shelf.on_order[0] - before[0]))
    assert [i for i, o in enumerate(orders) if o > 0] == [2, 5, 8]
    assert shelf.outcome(9).stockouts == 0


def test_safety_stock_reads_the_quantiles_of_its_own_matured_errors() -> None:
    stock = SafetyStock(protection=2, services=(0.5, 0.95), window=1000)
    rng = np.random.default_rng(0)
    for t in range(400):
        stock.observe(t, rng.poisson(5.0, 1).astype(float))
        levels = stock.levels(t, np.array([10.0]))  # the right point sum over 2 buckets of Poisson(5)
    # the errors are Poisson(10) - 10: the level is Poisson(10)'s quantile, median 10 and 95% quantile 15
    assert abs(levels[0, 0] - 10.0) <= 1.0 and 14.0 <= levels[0, 1] <= 16.0
    assert stock.filled == 398  # every forecast but the last two matured


def test_policies_are_parsed_and_checked() -> None:
    assert Policy.parse("service=0.9") == Policy(services=(0.9,))
    with pytest.raises(ValueError, match="not a policy part"):
        Policy.parse("lead=two")
    with pytest.raises(ValueError, match="not a policy part"):
        Policy.parse("leadtime=2")
    with pytest.raises(ValueError, match="service levels"):
        Policy.parse("service=0.98/0.9")
    with pytest.raises(ValueError, match="lead must be"):
        Policy(lead=-1)
    with pytest.raises(ValueError, match="within the horizon"):
        BacktestConfig(horizon=2, simulate=Policy(lead=2, review=1))


def rows(days: int = 60) -> list[dict]:
    """Three series of Poisson demand (means 3, 8 and 1 a day), one sale event per day that sold."""
    rng = np.random.default_rng(1)
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    return [{"event_id": f"{d}{s}", "type": "sale", "ts": (start + timedelta(days=d)).isoformat(), "sku": s,
             "qty": int(q)}
            for d in range(days) for s, lam in (("A", 3.0), ("B", 8.0), ("C", 1.0))
            for q in rng.poisson(lam, 1) if q > 0]


def test_the_backtest_replays_every_model_on_the_same_demand(tmp_path: Path) -> None:
    policy = Policy(lead=1, review=1, services=(0.5, 0.9, 0.98))
    learner = replace(SMALL, service_levels=policy.services)
    cfg = BacktestConfig(horizon=4, warmup=8, baselines=("naive", "moving_average"), learner=learner,
                         simulate=policy, trace=True)
    result = run_rows(lambda sorting: rows(), cfg, MemoryWindowStore)
    doc = summary(result)
    assert doc["policy"] == {"lead": 1, "review": 1, "services": [0.5, 0.9, 0.98]}
    assert list(doc["inventory"]) == ["tidecast", "naive", "moving_average"]
    for name, entries in doc["inventory"].items():
        assert [e["service"] for e in entries] == [0.5, 0.9, 0.98], name
        fill = [e["fill_rate"] for e in entries]
        stock = [e["avg_stock"] for e in entries]
        assert fill == sorted(fill) and stock == sorted(stock), name  # a higher level never holds or fills less
        assert 0.0 < fill[0] <= 1.0 and all(0.0 <= e["cycle_service"] <= 1.0 for e in entries)
    assert set(doc["lead_time"]["hit_rate"]) == set(doc["lead_time"]["below_rate"]) == {"0.1", "0.5", "0.9", "0.98"}
    written = write_report(result, tmp_path / "report")
    assert tmp_path / "report" / "stock_curve.png" in written
    assert "## Replenishment" in (tmp_path / "report" / "report.md").read_text()


def test_the_command_takes_a_policy_and_refuses_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sales.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(40)))
    args = ["backtest", str(path), "--json", "--horizon", "3", "--baselines", "naive", "--workers", "1",
            "--warmup", "5"]
    assert main([*args, "--simulate", "lead=1,review=1,service=0.9/0.95"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["inventory"]) == ["tidecast", "naive"]  # the worker process's baseline comes back too
    assert main([*args, "--simulate", "lead=3,review=1"]) == 2
    assert "--simulate needs lead + review (4 buckets) within the horizon (3)" in capsys.readouterr().err
    assert main([*args, "--simulate", "lead=1,service=95"]) == 2
    assert "--simulate: service levels must be" in capsys.readouterr().err
