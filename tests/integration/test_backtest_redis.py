"""`--store redis` and `--store memory` give identical forecasts on the same input, and leave no keys behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis
import torch

from tidecast.cli import main
from tidecast.config import Endpoints
from tidecast.models.learner import LearnerConfig
from tidecast.producers.files import read_events
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisWindowStore, delete_keys
from tidecast.stream.backtest.config import TIDECAST, BacktestConfig
from tidecast.stream.backtest.engine import run_rows
from tidecast.stream.backtest.result import BacktestResult
from tidecast.stream.window_store import MemoryWindowStore, WindowStore

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

H = 3
CONFIG = BacktestConfig(
    horizon=H, warmup=4, baselines=("naive", "tsb"), keep_forecasts=True,
    learner=LearnerConfig(horizon=H, lags=7, aux_lags=3, scale_window=7, hidden=16, batch_size=64,
                          replay_capacity=256, sku_buckets=256, store_buckets=16),
)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic sales and clicks (40 series, 5 weeks; new items, slow movers) as JSON lines."""
    path = tmp_path_factory.mktemp("backtest") / "synthetic.jsonl"
    with path.open("wb") as handle:
        for event in generate(SyntheticConfig(series=40, days=35, seed=11)):
            handle.write(orjson.dumps(event) + b"\n")
    return path


@pytest.fixture
def client(servers: Endpoints) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(servers.redis)
    yield c
    c.close()


def backtest(path: Path, store_factory: Callable[[], WindowStore]) -> BacktestResult:
    return run_rows(lambda sorting: read_events(path), CONFIG, store_factory)


def test_redis_and_memory_give_identical_forecasts(events: Path, client: redis.Redis) -> None:
    prefix = "backtest-test-redis."
    delete_keys(client, prefix)
    in_memory = backtest(events, MemoryWindowStore)
    on_redis = backtest(events, lambda: RedisWindowStore(client, prefix))
    try:
        assert on_redis.series == in_memory.series > 30
        assert on_redis.series_names == in_memory.series_names
        assert on_redis.counts == in_memory.counts
        for name, by_origin in in_memory.forecasts.items():
            assert by_origin.keys() == on_redis.forecasts[name].keys()
            for origin, values in by_origin.items():
                np.testing.assert_array_equal(values, on_redis.forecasts[name][origin], err_msg=f"{name} {origin}")
        assert on_redis.models == in_memory.models
        assert in_memory.models[TIDECAST]["scored"] > 0
    finally:
        assert delete_keys(client, prefix) > 0


def test_cli_store_redis_matches_memory_and_cleans_up(
    events: Path, servers: Endpoints, client: redis.Redis, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDECAST_TOPIC_PREFIX", "cli-backtest.")
    args = ["backtest", str(events), "--json", "--horizon", "3", "--baselines", "naive", "--workers", "0"]
    assert main(["--redis", servers.redis, *args, "--store", "redis"]) == 0
    on_redis = json.loads(capsys.readouterr().out)
    assert main([*args, "--store", "memory"]) == 0
    in_memory = json.loads(capsys.readouterr().out)
    assert on_redis["models"] == in_memory["models"]
    assert on_redis["series"] == in_memory["series"] == 40
    assert list(client.scan_iter(match="cli-backtest.*")) == []


def test_a_used_store_is_refused(events: Path, client: redis.Redis) -> None:
    """A second run on the keys of a first would mix the two: it is refused."""
    prefix = "backtest-test-fence."
    delete_keys(client, prefix)
    small = replace(CONFIG, baselines=(), keep_forecasts=False)
    run_rows(lambda sorting: read_events(events), small, lambda: RedisWindowStore(client, prefix))
    with pytest.raises(ValueError, match="already holds"):
        run_rows(lambda sorting: read_events(events), small, lambda: RedisWindowStore(client, prefix))
    delete_keys(client, prefix)
