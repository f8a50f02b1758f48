"""Two ``tidecast forecast --shard I/2`` processes on the embedded servers publish, between them, the forecasts
one forecaster publishes for the same windows: the same (series, origin) pairs with the same ids, once each,
each shard under its own checkpoint and lease."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import replace

import pytest
import redis
import torch
from pipeline import TIDECAST, env_for, produce
from tail_reader import read_forecasts

from tidecast.config import Settings
from tidecast.live import forecaster_config, learner_config
from tidecast.models import checkpoint
from tidecast.models.learner import OnlineLearner
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints
from tidecast.stream.adapters.redis_store import RedisCheckpoints, RedisWindowStore
from tidecast.stream.forecast_message import forecast_id
from tidecast.stream.forecaster import Forecaster
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.shards import kafka_partition
from tidecast.stream.timebuckets import from_iso

pytestmark = pytest.mark.integration


def run(settings: Settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*TIDECAST, *args], env=env_for(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def one_forecaster(settings: Settings) -> set[tuple[str, int]]:
    """(series, origin ms) of what one unsharded forecaster publishes from the same windows (in process)."""
    torch.set_num_threads(1)
    client = redis.Redis.from_url(settings.redis_url)
    inputs = tuple(f"{topic}:{p}" for topic in settings.topics.inputs for p in range(settings.partitions))
    sink = MemorySink()
    loop = Forecaster(forecaster_config(settings, inputs), RedisWindowStore(client, settings.topic_prefix),
                      OnlineLearner(learner_config(settings)), sink, MemoryCheckpoints(), checkpoint.dumps,
                      checkpoint.loads)
    loop.step()
    return {(name, batch.origin_ms) for batch, series, _, _ in sink.published for name in series}


def test_two_shards_publish_what_one_forecaster_would_once_each(settings: Settings) -> None:
    settings = replace(settings, retention=60, idle_timeout_seconds=1)
    produce(settings, with_faults(generate(SyntheticConfig(series=60, days=40, seed=6, clicks=False)), 0.0, 0.0))
    ingest = run(settings, "ingest", "--until-idle", "4")
    assert ingest.wait(timeout=300) == 0, ingest.stderr.read().decode()[-3000:]

    # shard 0 twice: one of the two is refused (the lease), shard 1 runs beside them
    shards = [run(settings, "forecast", "--shard", shard, "--until-idle", "3") for shard in ("0/2", "0/2", "1/2")]
    outcomes = [(process.wait(timeout=600), process.stderr.read().decode()) for process in shards]
    assert sorted(code for code, _ in outcomes[:2]) == [0, 1], outcomes
    assert "holds the lease" in next(err for code, err in outcomes[:2] if code == 1)
    assert outcomes[2][0] == 0, outcomes[2][1][-3000:]

    docs = read_forecasts(settings)
    pairs = Counter((doc["series"], doc["origin"]) for doc in docs)
    assert pairs and max(pairs.values()) == 1  # once each
    lineage = f"{settings.topic_prefix}forecaster:all"
    for doc in docs:  # the ids one forecaster gives
        assert doc["forecast_id"] == forecast_id(doc["series"], doc["origin"], settings.bucket_seconds, lineage)
    published = {(doc["series"], from_iso(doc["origin"])) for doc in docs}
    assert published == one_forecaster(settings)

    client = redis.Redis.from_url(settings.redis_url)
    assert RedisCheckpoints(client, settings.topic_prefix).load() is None  # no unsharded checkpoint
    for index in range(2):
        blob = RedisCheckpoints(client, settings.topic_prefix, f"shard-{index}-of-2").load()
        series = checkpoint.loads(blob)["panel"]["series"]
        assert series and all(kafka_partition(name.encode(), settings.partitions) % 2 == index for name in series)



def test_a_forecaster_of_another_layout_is_refused(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    unsharded = LeasedCheckpoints(client, settings.topic_prefix)  # as a running `tidecast forecast` holds it
    unsharded.acquire()
    try:
        shard = run(settings, "forecast", "--shard", "1/2", "--until-idle", "1")
        code, err = shard.wait(timeout=120), shard.stderr.read().decode()
    finally:
        unsharded.release()
    assert code == 2 and "a forecaster of another layout runs" in err and unsharded.lease in err, err[-2000:]
