"""Helpers shared by the integration tests: run tidecast commands, produce with faults, recount, read the DLQ."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import orjson
from kafka import KafkaConsumer, TopicPartition

from tidecast.config import Settings
from tidecast.producers.event_sender import EventSender
from tidecast.producers.faults import Outgoing
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.timebuckets import Buckets


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that points a ``tidecast`` subprocess at ``settings``."""
    return {
        **os.environ,
        "TIDECAST_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "TIDECAST_REDIS_URL": settings.redis_url or "",
        "TIDECAST_TOPIC_PREFIX": settings.topic_prefix,
        "TIDECAST_HOME": str(settings.home),
        "TIDECAST_BUCKET": f"{settings.bucket_seconds}s",
        "TIDECAST_LATENESS": f"{settings.lateness_seconds}s",
        "TIDECAST_RETENTION": str(settings.retention),
        "TIDECAST_PARTITIONS": str(settings.partitions),
        "TIDECAST_IDLE_TIMEOUT": f"{settings.idle_timeout_seconds}s",
    }


TIDECAST = [sys.executable, "-m", "tidecast"]


def start_ingest(settings: Settings, until_idle: float) -> subprocess.Popen:
    """``tidecast ingest --until-idle`` on ``settings``, its stderr kept for the test's message."""
    return subprocess.Popen([*TIDECAST, "ingest", "--until-idle", str(until_idle)], env=env_for(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def sigkill_midway(settings: Settings, store: RedisWindowStore, kills: int, step: tuple[int, int],
                   rng: random.Random) -> list[int]:
    """Start an ingest worker and SIGKILL it once it has ingested ``rng.randint(*step)`` more records, ``kills``
    times; returns the stored ``ingested`` count after each kill."""
    after = []
    for _ in range(kills):
        before = store.stats().counters["ingested"]
        worker = start_ingest(settings, until_idle=30)
        target = before + rng.randint(*step)
        deadline = time.monotonic() + 120
        while store.stats().counters["ingested"] < target and worker.poll() is None:
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        assert worker.poll() is None, "the worker finished before it could be killed"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        after.append(store.stats().counters["ingested"])
    return after


def produce(settings: Settings, stream: Iterable[Outgoing]) -> dict:
    """Send ``stream``; returns the valid docs, duplicate count and where each malformed message landed."""
    valid: list[dict] = []
    duplicates = 0
    malformed_futures = []
    with EventSender(settings, settings.kafka_bootstrap) as sender:
        for out in stream:
            if out.kind == "malformed":
                malformed_futures.append(sender.send_raw(settings.topics.sales, None, out.value))
                continue
            sender.send(out.doc)
            if out.kind == "event":
                valid.append(out.doc)
            else:
                duplicates += 1
    malformed = set()
    for future in malformed_futures:
        meta = future.get(timeout=30)
        malformed.add((meta.topic, meta.partition, meta.offset))
    return {"valid": valid, "duplicates": duplicates, "malformed": malformed}


def recount(docs: Iterable[dict], bucket_seconds: int) -> dict[tuple[int, str], list[float]]:
    """An independent recount of the windows, straight from the event objects (no tidecast code)."""
    origin_ms = 4 * 86_400_000
    size_ms = bucket_seconds * 1000
    windows: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0, 0, 0])
    for doc in docs:
        ts = doc["ts"]
        ms = ts if isinstance(ts, int) else round(datetime.fromisoformat(ts).timestamp() * 1000)
        row = windows[((ms - origin_ms) // size_ms, f"{doc.get('store') or 'all'}:{doc['sku']}")]
        if doc["type"] == "click":
            row[4 if doc["action"] == "view" else 5] += 1
        elif doc["qty"] > 0:
            row[0] += doc["qty"]
            row[1] += 1
            row[2] += doc["qty"] * doc.get("price", 0.0) if doc.get("price") is not None else 0.0
            row[6] += 1 if doc.get("promo") else 0
        else:
            row[3] += -doc["qty"]
    return dict(windows)


def stored_windows(store: RedisWindowStore, buckets: Iterable[int]) -> dict[tuple[int, str], list[float]]:
    return {(b, series): row for b in buckets for series, row in store.read_bucket(b).items()}


def assert_windows_equal(stored: dict, expected: dict) -> None:
    assert stored.keys() == expected.keys(), (
        f"{len(stored.keys() - expected.keys())} unexpected, {len(expected.keys() - stored.keys())} missing"
    )
    for key, want in expected.items():
        got = stored[key]
        exact = [got[i] for i in (0, 1, 3, 4, 5, 6)], [want[i] for i in (0, 1, 3, 4, 5, 6)]
        assert exact[0] == exact[1], (key, got, want)
        assert abs(got[2] - want[2]) <= 1e-9 * max(1.0, abs(want[2])), (key, got, want)


def read_dlq(settings: Settings, timeout: float = 30.0) -> list[dict]:
    """Every message on the DLQ topic, from the beginning to the current high watermark, parsed."""
    return [orjson.loads(value) for value in read_dlq_raw(settings, timeout)]


def read_dlq_raw(settings: Settings, timeout: float = 30.0) -> list[bytes]:
    """Every DLQ message's bytes, from the beginning to the current high watermark."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_bytes=16 * 1024 * 1024)
    parts = [TopicPartition(settings.topics.dlq, p) for p in consumer.partitions_for_topic(settings.topics.dlq)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for records in batch.values():
            values.extend(r.value for r in records)
        marks = [consumer.highwater(tp) for tp in parts]  # known once a fetch for the partition returned
        caught_up = None not in marks and all(consumer.position(tp) >= m for tp, m in zip(parts, marks, strict=True))
        if not batch and caught_up:
            break
    consumer.close()
    return values


def expected_plans(docs: list[dict], buckets: Buckets) -> dict[tuple[int, str], dict]:
    """Last write wins by (issue time, send order): an independent recount."""
    latest: dict[tuple[int, str], tuple] = {}
    for n, doc in enumerate(docs):
        target = f"{doc['store']}:{doc['sku']}" if "sku" in doc else doc["store"]
        key = (buckets.index(int(datetime.fromisoformat(doc["for"]).timestamp() * 1000)), target)
        order = (datetime.fromisoformat(doc["ts"]), n)
        if key not in latest or order > latest[key][0]:
            latest[key] = (order, doc)
    return {key: doc for key, (_, doc) in latest.items()}
