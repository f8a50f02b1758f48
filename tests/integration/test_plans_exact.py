"""Plans through the embedded Kafka and Redis exactly once: the ingest worker SIGKILLed mid-stream, the stored
plans equal an independent last-write-wins recount, and the published forecasts name the plan they assumed."""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta

import jsonschema
import pytest
import redis
from pipeline import TIDECAST, env_for, expected_plans, produce, sigkill_midway, start_ingest
from tail_reader import read_forecasts
from test_forecast import SCHEMA

from tidecast.config import Settings
from tidecast.producers.event_sender import EventSender
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.timebuckets import Buckets

pytestmark = pytest.mark.integration

DAYS = 40
AHEAD = 7


def plan_docs(series: list[tuple[str, str]], start: datetime, rng: random.Random) -> list[dict]:
    """For every series and day: a plan issued AHEAD days before, then a revision a day later (it wins); and a
    store plan per store and day. In issue order, so no plan is late on its partition."""
    docs = []
    for day in range(AHEAD, DAYS + AHEAD):
        target = (start + timedelta(days=day, hours=12)).isoformat()
        for revision in (0, 1):
            issued = (start + timedelta(days=day - AHEAD + revision, hours=revision)).isoformat()
            for store, sku in series:
                docs.append({"event_id": f"p-{store}-{sku}-{day}-{revision}", "type": "plan", "ts": issued,
                             "for": target, "store": store, "sku": sku, "promo": rng.random() < 0.3,
                             "price": round(rng.uniform(1, 5), 2)})
            for store in sorted({s for s, _ in series}):
                docs.append({"event_id": f"p-{store}-{day}-{revision}", "type": "plan", "ts": issued, "for": target,
                             "store": store, "open": rng.random() < 0.9, "event": None if day % 7 else "market"})
    return docs


def test_plans_exactly_once_through_kafka_and_redis(settings: Settings) -> None:
    settings = replace(settings, retention=90, idle_timeout_seconds=1)
    config = SyntheticConfig(series=60, days=DAYS, seed=11)  # with clicks: enough records to kill a worker mid-way
    sales = list(generate(config))
    series = sorted({(doc.get("store") or "all", doc["sku"]) for doc in sales})
    plans = plan_docs(series, config.start, random.Random(5))
    rng = random.Random(2)
    mixed = sales + plans
    produce(settings, with_faults(iter(mixed), malformed=0.0, duplicates=0.0))
    with EventSender(settings, settings.kafka_bootstrap) as sender:  # a plan out of bounds goes to the DLQ
        sender.send({"event_id": "far", "type": "plan", "ts": (config.start + timedelta(days=DAYS)).isoformat(),
                     "store": "x",
                     "for": (config.start + timedelta(days=400)).isoformat(), "promo": True})

    store = RedisWindowStore(redis.Redis.from_url(settings.redis_url), settings.topic_prefix)
    total = len(mixed)
    sigkill_midway(settings, store, kills=3, step=(total // 8, total // 5), rng=rng)
    worker = start_ingest(settings, until_idle=4)
    _, stderr = worker.communicate(timeout=300)
    assert worker.returncode == 0, stderr.decode()[-2000:]

    stats = store.stats()
    assert stats.counters["ingested"] == total and stats.counters["duplicates"] == 0
    assert stats.counters["invalid"] == 1  # the plan 400 days ahead
    buckets = Buckets(settings.bucket_seconds)
    expected = expected_plans(plans, buckets)
    first, last = min(b for b, _ in expected), max(b for b, _ in expected)
    stored = {(b, target): entry for b, targets in store.read_plans(first, last).items()
              for target, entry in targets.items()}
    assert stored.keys() == expected.keys()
    for key, doc in expected.items():
        values = stored[key].values
        assert values == (doc.get("promo"), doc.get("price"), doc.get("open"),
                          ("" if doc["event"] is None else doc["event"]) if "event" in doc else None), key

    result = subprocess.run([*TIDECAST, "forecast", "--until-idle", "3"], env=env_for(settings),
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    docs = read_forecasts(settings)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for doc in docs:
        validator.validate(doc)
    assert docs and all("plan" in doc for doc in docs)
    hashes = [doc["plan"] for doc in docs if doc["plan"] is not None]
    assert len(hashes) > len(docs) // 2 and len(set(hashes)) > 10  # plans differ between series
