"""The forecaster on the embedded servers: valid forecasts for every active series at every close, and a
SIGKILL + restart that resumes from the checkpoint (no bucket skipped, none learned twice)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import redis
from pipeline import TIDECAST, env_for, produce
from tail_reader import read_forecasts

from tidecast.config import Settings
from tidecast.models import checkpoint
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisCheckpoints
from tidecast.stream.timebuckets import Buckets, from_iso

pytestmark = pytest.mark.integration

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs/schemas/forecast.schema.json").read_text())
TARGET_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs/schemas/target.schema.json").read_text())


def start(settings: Settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*TIDECAST, *args], env=env_for(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-3000:]


def last_closed(settings: Settings) -> int | None:
    blob = RedisCheckpoints(redis.Redis.from_url(settings.redis_url), settings.topic_prefix).load()
    return None if blob is None else checkpoint.loads(blob)["last_closed"]


def check_forecasts(docs: list[dict], settings: Settings) -> dict[str, dict[str, dict]]:
    """Schema, shape and value rules; returns {origin: {series: doc}} with duplicates checked identical."""
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    by_origin: dict[str, dict[str, dict]] = defaultdict(dict)
    for doc in docs:
        validator.validate(doc)
        assert len(doc["values"]) == settings.horizon and doc["quantiles"] == list(settings.quantiles)
        for row in doc["values"]:
            assert len(row) == len(settings.quantiles) and row[0] >= 0 and row == sorted(row)
        assert len(doc["mean"]) == settings.horizon and min(doc["mean"]) >= 0
        earlier = by_origin[doc["origin"]].get(doc["series"])
        if earlier is not None:  # re-published after a crash: the same forecast, the same id
            assert (earlier["forecast_id"], earlier["values"], earlier["mean"]) == (
                doc["forecast_id"], doc["values"], doc["mean"]
            )
        by_origin[doc["origin"]][doc["series"]] = doc
    return by_origin


START = SyntheticConfig().start


def first_bucket(start: datetime, bucket_seconds: int = 86_400) -> int:
    return Buckets(bucket_seconds).index(int(start.timestamp() * 1000))


def test_forecasts_resume_after_sigkill(settings: Settings) -> None:
    settings = replace(settings, retention=90, idle_timeout_seconds=1)  # no clicks: those partitions idle
    produce(settings, with_faults(generate(SyntheticConfig(series=150, days=60, seed=5, clicks=False)), 0.0, 0.0))
    finish(start(settings, "ingest", "--until-idle", "4"))

    forecaster = start(settings, "forecast")
    deadline = time.monotonic() + 120
    first = None
    while (closed := last_closed(settings)) is None or closed - (first := first or closed) < 20:
        assert forecaster.poll() is None, forecaster.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the forecaster made no progress"
        time.sleep(0.02)
    forecaster.send_signal(signal.SIGKILL)
    forecaster.wait()
    finish(start(settings, "forecast", "--until-idle", "3"))

    by_origin = check_forecasts(read_forecasts(settings), settings)
    buckets = Buckets(settings.bucket_seconds)
    origins = sorted(buckets.index(from_iso(origin)) for origin in by_origin)
    closed = last_closed(settings)
    # a backlog is caught up without publishing forecasts whose every target has closed: what is published
    # are the last H closes, consecutive, ending after the last close
    assert origins == list(range(closed - settings.horizon + 2, closed + 2))
    # one forecast per active series per close (all 150 series sell within the retention)
    assert all(len(by_origin[origin]) >= 140 for origin in by_origin)
    # every bucket learned exactly once across the kill and the restart: the model version is the number of
    # buckets closed since the first one (a replayed close gets the same version and the same forecast ids)
    versions = [next(iter(by_origin[o].values()))["model_version"] for o in sorted(by_origin, key=from_iso)]
    assert [b - a for a, b in itertools.pairwise(versions)] == [1] * (len(versions) - 1)
    assert versions[-1] == closed - first_bucket(START) + 1


def test_idle_partitions_do_not_stall_closes(settings: Settings) -> None:
    settings = replace(settings, idle_timeout_seconds=1)
    docs = list(generate(SyntheticConfig(series=1, days=20, seed=2, clicks=False, new_item_fraction=0.0,
                                         slow_mover_fraction=0.0)))
    store, sku = docs[0].get("store"), docs[0]["sku"]
    # the store's policy reviews every 2 buckets; the series reports its stock (both on <prefix>plans)
    standing = [{"event_id": "policy-1", "type": "policy", "ts": docs[0]["ts"], "store": store, "review": 2},
                {"event_id": "stock-1", "type": "inventory", "ts": docs[0]["ts"], "store": store, "sku": sku,
                 "on_hand": 5, "on_order": 1}]
    produce(settings, with_faults(iter(standing + docs), malformed=0.0, duplicates=0.0))
    result = subprocess.run([*TIDECAST, "run", "--until-idle", "6"], env={**env_for(settings), "TIDECAST_EXPLAIN": "1"},
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    by_origin = check_forecasts(read_forecasts(settings), settings)
    # 23 of 24 partitions never saw an event, yet the buckets closed (through day 18 of 20)
    assert last_closed(settings) - first_bucket(START) + 1 >= 18 and len(by_origin) >= settings.horizon
    # each forecast came with its stock target, acknowledged with it: the same id, a valid level
    targets = read_forecasts(settings, topic=settings.topics.targets)
    validator = jsonschema.Draft202012Validator(TARGET_SCHEMA, format_checker=jsonschema.FormatChecker())
    by_id = {doc["forecast_id"]: doc for doc in targets}
    forecast_ids = {doc["forecast_id"] for docs in by_origin.values() for doc in docs.values()}
    assert set(by_id) == forecast_ids
    for doc in targets:
        validator.validate(doc)
        protection = doc["protection"]
        assert doc["order_up_to"] == protection["values"][protection["quantiles"].index(0.95)]
        assert protection["values"] == sorted(protection["values"])
    last = max(targets, key=lambda doc: from_iso(doc["origin"]))  # ingested before it, whatever the timing
    assert (last["lead_time"], last["review"], last["service_level"], last["protection"]["buckets"]) == (2, 2, 0.95, 4)
    assert last["policy_from"] == "store" and last["inventory"]["on_hand"] == 5
    assert last["order_quantity"] == pytest.approx(max(0.0, last["order_up_to"] - 6), abs=0.011)
    # with TIDECAST_EXPLAIN every forecast says why (valid against the schema above), adding up to its median
    for docs_of_origin in by_origin.values():
        for doc in docs_of_origin.values():
            field = doc["explain"]
            total = field["reference"] + sum(field["contributions"].values()) + field["residual"] + field["calibration"]
            assert total == pytest.approx(field["median"], abs=0.01)
