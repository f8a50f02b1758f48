"""Forecaster shards: the partitioner they deal series by, the view of a shard's windows, N shard forecasters
against one (same closes, each series published once, plans of other partitions seen), and the sharded
learner that replays them in the backtest."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import orjson
import pytest
import torch
from kafka.partitioner.default import murmur2 as kafka_murmur2

from tidecast.models import checkpoint
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.backtest.config import BacktestConfig
from tidecast.stream.backtest.engine import run_rows
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, PartitionState, Record
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.sharded_learner import ShardedLearner
from tidecast.stream.shards import Shard, ShardView, kafka_partition, murmur2
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

torch.set_num_threads(1)

DAILY = Buckets(86_400)
PARTITIONS = 6
SMALL = LearnerConfig(horizon=3, lags=7, aux_lags=3, scale_window=7, hidden=16, batch_size=64,
                      replay_capacity=256, replay_add=32, sku_buckets=256, store_buckets=16, plans=True)


def test_murmur2_is_kafkas() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert murmur2(data) == kafka_murmur2(data)
    assert kafka_partition(b"s1:A", 12) == (kafka_murmur2(b"s1:A") & 0x7FFFFFFF) % 12


@pytest.mark.parametrize(("text", "why"), [
    ("1", "expected I/N"), ("a/2", "expected I/N"), ("-1/2", "expected I/N"), ("0/0", "N must be at least 1"),
    ("2/2", "I must be from 0 to N-1"),
])
def test_a_bad_shard_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Shard.parse(text)


def partitioned_store(series: int = 40, days: int = 30) -> MemoryWindowStore:
    """Synthetic sales in ``PARTITIONS`` partitions, each series in the partition its key lands in, and a
    promotion plan of each store (keyed by the store, so often in another partition) for a late day, committed
    as the ingest would; every partition's watermark at the newest event (idle ones moved along)."""
    store = MemoryWindowStore()
    config = SyntheticConfig(series=series, days=days, seed=4, clicks=False)
    docs = list(generate(config))
    day = (config.start + timedelta(days=days - 4)).isoformat()
    docs += [{"event_id": f"plan-{name}", "type": "plan", "ts": docs[0]["ts"], "store": name, "for": day, "promo": True}
             for name in sorted({doc["store"] for doc in docs})]
    for partition in range(PARTITIONS):
        for topic in ("sales", "plans"):
            mine = [doc for doc in docs if (doc["type"] == "plan") == (topic == "plans")
                    and kafka_partition(_key(doc), PARTITIONS) == partition]
            ingestor = PartitionIngestor(topic, partition, DAILY, 0, 60, store.load_partition(topic, partition))
            if mine:
                assert store.commit(ingestor.apply([Record(i, orjson.dumps(doc)) for i, doc in enumerate(mine)]))
    newest = max(state.max_ts_ms or 0 for state in store.partitions.values())
    for partition in range(PARTITIONS):
        store.partitions.setdefault(("sales", partition), PartitionState(next_offset=0)).max_ts_ms = newest
    return store


def _key(doc: dict) -> bytes:
    return (doc["store"] if doc["type"] == "plan" else f"{doc['store']}:{doc['sku']}").encode()


def run_loop(store, shard: Shard | None, learner) -> tuple[Forecaster, MemorySink]:
    inputs = tuple(f"sales:{p}" for p in range(PARTITIONS))
    config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=30, quantiles=SMALL.quantiles,
                              inputs=inputs)
    view = store if shard is None else ShardView(store, shard)
    sink = MemorySink()
    loop = Forecaster(config, view, learner, sink, MemoryCheckpoints(), checkpoint.dumps, checkpoint.loads,
                      clock=lambda: 0.0)
    loop.step()
    return loop, sink


def test_shards_publish_each_series_once_at_the_same_closes_as_one_forecaster() -> None:
    store = partitioned_store()
    whole_loop, whole = run_loop(store, None, OnlineLearner(SMALL))
    shards = [run_loop(store, Shard(i, 3), OnlineLearner(SMALL)) for i in range(3)]
    origins = [batch.origin_ms for batch, *_ in whole.published]
    assert len(origins) > 10
    for loop, sink in shards:
        assert loop.last_closed == whole_loop.last_closed
        assert [batch.origin_ms for batch, *_ in sink.published] == origins  # the same closes, in order
    for n, (_, series, _, _) in enumerate(whole.published):
        parts = [sink.published[n][1] for _, sink in shards]
        assert sum(len(p) for p in parts) == len(series) and set().union(*parts) == set(series)
        for index, part in enumerate(parts):  # each series in the shard its partition belongs to
            assert all(kafka_partition(name.encode(), PARTITIONS) % 3 == index for name in part)
    # a store's plan sits in the store's partition; every shard forecasting one of its series saw it
    for _, sink in shards:
        assert any(h is not None for hashes in sink.plans for h in (hashes or ()))


def test_the_sharded_learner_forecasts_as_its_shards_would() -> None:
    store = partitioned_store(series=24, days=25)
    learners = [OnlineLearner(SMALL) for _ in range(2)]
    _, together = run_loop(store, None, ShardedLearner(learners, PARTITIONS))
    apart = [run_loop(store, Shard(i, 2), OnlineLearner(SMALL))[1] for i in range(2)]
    _, series, values, mean = together.published[-1]
    for sink in apart:
        _, names, part_values, part_mean = sink.published[-1]
        rows = [series.index(name) for name in names]
        np.testing.assert_allclose(values[rows], part_values, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(mean[rows], part_mean, rtol=1e-5, atol=1e-5)
    state = ShardedLearner(learners, PARTITIONS).state_dict()
    fresh = ShardedLearner([OnlineLearner(SMALL) for _ in range(2)], PARTITIONS)
    fresh.load_state_dict(checkpoint.loads(checkpoint.dumps(state)))
    assert fresh.model_version == sum(learner.model_version for learner in learners) > 0
    with pytest.raises(ValueError, match="of 3 shards"):
        ShardedLearner([OnlineLearner(SMALL) for _ in range(3)], PARTITIONS).load_state_dict(state)


def test_backtest_replays_shards_on_the_same_points() -> None:
    rows = [{"event_id": f"{d}{s}", "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "sku": s,
             "qty": (d * (i + 1)) % 5 + 1} for d in range(1, 29) for i, s in enumerate("ABCDEF")]
    small = LearnerConfig(horizon=2, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16,
                          replay_capacity=64, sku_buckets=64, store_buckets=8)
    results = {n: run_rows(lambda sorting: rows, BacktestConfig(horizon=2, warmup=4, baselines=("naive",),
                                                                learner=small, shards=n), MemoryWindowStore)
               for n in (1, 2)}
    assert results[1].models["tidecast"]["scored"] == results[2].models["tidecast"]["scored"] > 0
    assert results[1].models["tidecast"]["mase"] != results[2].models["tidecast"]["mase"]
    with pytest.raises(ValueError, match="shards must be from 1"):
        BacktestConfig(shards=13)
