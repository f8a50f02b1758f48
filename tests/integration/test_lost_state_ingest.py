"""End to end on the embedded servers: Redis that lost a partition's offset, or everything under a running worker,
stops ingest with a clear message instead of reading the partition again from the beginning (which added every
event of it a second time) or failing as "fenced"; ``tidecast rebuild --yes`` repairs it from the retained topics.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time

import pytest
import redis
from pipeline import TIDECAST, assert_windows_equal, env_for, produce, recount, stored_windows

from tidecast.config import Settings
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisWindowStore, delete_keys

pytestmark = pytest.mark.integration


def events(seed: int, count: int) -> list[dict]:
    return list(itertools.islice(generate(SyntheticConfig(series=40, days=14, seed=seed)), count))


def tidecast(settings: Settings, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*TIDECAST, *args], env=env_for(settings), capture_output=True, text=True, timeout=timeout)


def ingested(settings: Settings, client: redis.Redis) -> int:
    """Every partition's ``ingested`` counter, also of a partition that lost its offset (``stats()`` skips those)."""
    return sum(int(client.hget(f"{RedisWindowStore.partition_prefix(settings.topic_prefix, p)}stats:{topic}",
                               "ingested") or 0)
               for p in range(settings.partitions) for topic in settings.topics.inputs)


def check_windows(settings: Settings, store: RedisWindowStore, docs: list[dict]) -> None:
    expected = recount(docs, settings.bucket_seconds)
    buckets = range(min(b for b, _ in expected), max(b for b, _ in expected) + 1)
    assert_windows_equal(stored_windows(store, buckets), expected)


def test_a_lost_offset_stops_ingest_and_rebuild_repairs_it(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    store = RedisWindowStore(client, settings.topic_prefix)
    produced = produce(settings, with_faults(events(5, 3_000), malformed=0, duplicates=0, seed=5))
    first = tidecast(settings, "ingest", "--until-idle", "3")
    assert first.returncode == 0, first.stderr[-2000:]
    assert store.stats().counters["ingested"] == 3_000

    partition = next(p for p in store.partitions() if client.hget(store.partition_prefix(settings.topic_prefix, p)
                                                                  + "stats:" + settings.topics.sales, "ingested"))
    client.hdel(store.partition_prefix(settings.topic_prefix, partition) + "off", settings.topics.sales)
    again = tidecast(settings, "ingest", "--until-idle", "3")
    assert again.returncode == 1, again.stderr[-2000:]
    assert f"{settings.topics.sales}:{partition}: the stored state is incomplete: the offset is missing" in again.stderr
    assert "tidecast rebuild --yes" in again.stderr and "Traceback" not in again.stderr
    assert ingested(settings, client) == 3_000  # nothing read twice
    stats = json.loads(tidecast(settings, "inspect", "stats", "--json").stdout)
    assert stats["gaps"] == 1

    report = tidecast(settings, "rebuild")
    assert report.returncode == 1 and "Nothing deleted" in report.stdout
    assert f"{settings.topics.sales}:{partition}: Kafka holds offsets from 0" in report.stdout
    assert ingested(settings, client) == 3_000
    client.set(settings.topic_prefix + "checkpoint:forecaster:all", b"kept")
    rebuilt = tidecast(settings, "rebuild", "--yes")
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert store.partitions() == [] and client.get(settings.topic_prefix + "checkpoint:forecaster:all") == b"kept"

    final = tidecast(settings, "ingest", "--until-idle", "3")
    assert final.returncode == 0, final.stderr[-2000:]
    assert store.stats().counters["ingested"] == 3_000 and store.stats().gaps == 0
    check_windows(settings, store, produced["valid"])


def test_redis_emptied_under_a_running_worker_says_so(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    store = RedisWindowStore(client, settings.topic_prefix)
    produce(settings, with_faults(events(6, 2_000), malformed=0, duplicates=0, seed=6))
    worker = subprocess.Popen([*TIDECAST, "ingest", "--until-idle", "60"], env=env_for(settings),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while store.stats().counters["ingested"] < 2_000:
            assert worker.poll() is None and time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)
        delete_keys(client, settings.topic_prefix)  # FLUSHALL, for this test's keys only
        produce(settings, with_faults(events(7, 2_000), malformed=0, duplicates=0, seed=7))
        _, stderr = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 1, stderr[-2000:]
    assert "Redis holds no state for this partition although this worker committed up to offset" in stderr
    assert "committed by another consumer" not in stderr and "Traceback" not in stderr
    assert ingested(settings, client) == 0  # nothing written into the emptied store
    assert store.stats().gaps >= 1
    restarted = tidecast(settings, "ingest", "--until-idle", "3")  # no silent re-read after the loss either
    assert restarted.returncode == 1 and "the offset is missing while its gaps exist" in restarted.stderr


def test_topics_are_created_with_a_retention_and_short_ones_are_warned_about(settings: Settings) -> None:
    from tidecast.consumers.ingest_worker import check_retention
    from tidecast.stream.adapters.kafka_clients import create_topics, topic_retention_ms, topic_retentions

    bootstrap = settings.kafka_bootstrap or ""
    topic = settings.topic_prefix + "retained"
    create_topics(bootstrap, [topic], 1, retention_ms=topic_retention_ms(settings))
    assert topic_retentions(bootstrap, [topic]) == {topic: 2 * 56 * 86_400_000}
    short = settings.with_overrides(topic_prefix=settings.topic_prefix + "short.")
    create_topics(bootstrap, short.topics.inputs, 1, retention_ms=86_400_000)
    warnings = check_retention(short, bootstrap)
    assert warnings == [f"{t} keeps records 1d, less than the Redis windows span (56 buckets of 1d)"
                        for t in short.topics.inputs]
