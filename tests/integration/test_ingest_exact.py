"""End to end on the embedded servers: 200k events with 1% malformed and 1% re-sent duplicates.

The windows must equal an independent recount exactly, the DLQ must hold exactly the malformed messages,
and duplicates must be counted, not added, also when the ingest worker is SIGKILLed mid-stream; on one
valkey-server and on a three-master Redis Cluster (the session's ``cluster``).
"""

from __future__ import annotations

import itertools
import random
import subprocess
from dataclasses import replace

import pytest
from pipeline import (
    assert_windows_equal,
    produce,
    read_dlq,
    recount,
    sigkill_midway,
    start_ingest,
    stored_windows,
)

from tidecast.config import Settings
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_clients import redis_client
from tidecast.stream.adapters.redis_store import RedisWindowStore

pytestmark = pytest.mark.integration

EVENTS = 200_000


@pytest.fixture(params=["redis", "redis-cluster"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The session's servers, or its Kafka with the session's Redis Cluster."""
    if request.param == "redis":
        return settings
    return replace(settings, redis_url=request.getfixturevalue("cluster"))


def stored(settings: Settings) -> RedisWindowStore:
    return RedisWindowStore(redis_client(settings, settings.redis_url or ""), settings.topic_prefix)


@pytest.fixture
def produced(settings: Settings) -> dict:
    docs = itertools.islice(generate(SyntheticConfig(series=200, days=28, seed=7)), EVENTS)
    return produce(settings, with_faults(docs, malformed=0.01, duplicates=0.01, seed=7))


def ingest(settings: Settings, until_idle: float = 3.0) -> subprocess.Popen:
    return start_ingest(settings, until_idle)


def check(settings: Settings, produced: dict, exactly_once_dlq: bool) -> None:
    store = stored(settings)
    expected = recount(produced["valid"], settings.bucket_seconds)
    buckets = range(min(b for b, _ in expected), max(b for b, _ in expected) + 1)
    assert_windows_equal(stored_windows(store, buckets), expected)

    stats = store.stats()
    assert stats.counters["ingested"] == len(produced["valid"]) == EVENTS
    assert stats.counters["duplicates"] == produced["duplicates"] > 0
    assert stats.counters["invalid"] == stats.counters["dlq"] == len(produced["malformed"]) > 0
    assert stats.counters["late"] == 0

    dlq = read_dlq(settings)
    sources = [(m["source"]["topic"], m["source"]["partition"], m["source"]["offset"]) for m in dlq]
    assert set(sources) == produced["malformed"]
    if exactly_once_dlq:
        assert len(sources) == len(set(sources))
    assert all(m["reason"] and m["rejected_at"].endswith("+00:00") for m in dlq)


def test_windows_equal_an_independent_recount(settings: Settings, produced: dict) -> None:
    worker = ingest(settings)
    _, stderr = worker.communicate(timeout=300)
    assert worker.returncode == 0, stderr.decode()[-2000:]
    check(settings, produced, exactly_once_dlq=True)


def test_sigkill_five_times_mid_stream_loses_and_doubles_nothing(settings: Settings, produced: dict) -> None:
    store = stored(settings)
    after = sigkill_midway(settings, store, kills=5, step=(15_000, 30_000), rng=random.Random(3))
    assert max(after) < EVENTS
    worker = ingest(settings)
    _, stderr = worker.communicate(timeout=300)
    assert worker.returncode == 0, stderr.decode()[-2000:]
    check(settings, produced, exactly_once_dlq=False)
