"""Poison pills through the real broker and Redis: ``tidecast ingest`` survives them and goes on.

Before the guards each of these made the worker exit 1, again on every restart, stalling every partition it
owned; the event from 2199 emptied every window instead.
"""

from __future__ import annotations

import base64
import itertools
import subprocess

import orjson
import pytest
import redis
from pipeline import TIDECAST, assert_windows_equal, env_for, read_dlq, recount, stored_windows

from tidecast.config import Settings
from tidecast.producers.event_sender import EventSender
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisWindowStore

pytestmark = pytest.mark.integration

KEY = b"all:P"  # every poison and the events after it share one key, so one partition
BIG = b'{"event_id": "big", "type": "sale", "pad": "' + b"x" * 6_300_000 + b'"}'


def poisons(ts: int) -> dict[str, bytes]:
    def sale(event_id: str, **fields: object) -> bytes:
        return orjson.dumps({"event_id": event_id, "type": "sale", "ts": ts, "sku": "P", "qty": 1, **fields})

    return {
        "inf": sale("inf", qty=1e308, price=10.0),
        "u64a": sale("u64a", qty=2**64 - 1),
        "u64b": sale("u64b", qty=2**64 - 1),
        "big": BIG,
        "longsku": sale("longsku", sku="S" * 100_000),
        "future": sale("future", ts=7_226_582_400_000),  # 2199-01-01
    }


def test_poison_records_are_dlqd_and_ingest_goes_on(settings: Settings) -> None:
    docs = list(itertools.islice(generate(SyntheticConfig(series=20, days=7, seed=3)), 3000))
    bad = poisons(1_767_600_000_000)  # 2026-01-05T08:00Z, inside the synthetic week
    after = [{"event_id": f"after-{i}", "type": "sale", "ts": docs[-1]["ts"], "sku": "P", "qty": 2, "price": 1.5}
             for i in range(5)]
    with EventSender(settings, settings.kafka_bootstrap) as sender:
        for doc in docs[: len(docs) // 2]:
            sender.send(doc)
        futures = {name: sender.send_raw(settings.topics.sales, KEY, value) for name, value in bad.items()}
        for doc in docs[len(docs) // 2:] + after:
            sender.send(doc)
    where = {name: (m.topic, m.partition, m.offset) for name, m in ((n, f.get(timeout=30)) for n, f in futures.items())}

    worker = subprocess.run([*TIDECAST, "ingest", "--until-idle", "3"], env=env_for(settings),
                            capture_output=True, timeout=300)
    assert worker.returncode == 0, worker.stderr.decode()[-3000:]

    store = RedisWindowStore(redis.Redis.from_url(settings.redis_url), settings.topic_prefix)
    valid = docs + after
    expected = recount(valid, settings.bucket_seconds)
    buckets = range(min(b for b, _ in expected), max(b for b, _ in expected) + 1)
    assert_windows_equal(stored_windows(store, buckets), expected)  # nothing after the poisons was lost or late
    counters = store.stats().counters
    assert counters["ingested"] == len(valid) and counters["late"] == 0
    assert counters["invalid"] == counters["dlq"] == len(bad)

    dlq = {(m["source"]["topic"], m["source"]["partition"], m["source"]["offset"]): m for m in read_dlq(settings)}
    by_name = {name: dlq[source] for name, source in where.items()}
    assert set(dlq) == set(where.values())
    for name in ("inf", "u64a", "u64b"):
        assert "TIDECAST_MAX_QTY" in by_name[name]["reason"]
        assert base64.b64decode(by_name[name]["payload_b64"]) == bad[name]  # small payloads: byte for byte
    assert by_name["future"]["reason"] == "future"
    assert len(by_name["longsku"]["reason"]) < 200
    big = by_name["big"]
    assert big["truncated"] is True and big["payload_size"] == len(BIG)
    assert BIG.startswith(base64.b64decode(big["payload_b64"])) and len(base64.b64decode(big["payload_b64"])) == 65536
    assert all(len(orjson.dumps(m)) < 100_000 for m in dlq.values())
