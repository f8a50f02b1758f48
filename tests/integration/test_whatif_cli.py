"""``tidecast whatif`` and ``tidecast explain`` through the CLI on the embedded servers, after a short ``run`` over a
synthetic stream with its promotions announced ahead: exit 0 and the JSON documents' shape, and neither the
forecast topic nor the checkpoint changes (neither takes a lease, learns or publishes)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from pipeline import TIDECAST, env_for, produce
from tail_reader import read_forecasts

from tidecast.config import Settings
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate, planned_promotions
from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints
from tidecast.stream.adapters.redis_store import RedisCheckpoints
from tidecast.stream.timebuckets import Buckets, from_iso, to_iso

pytestmark = pytest.mark.integration


def test_whatif_reads_the_live_model_and_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, idle_timeout_seconds=1)
    config = SyntheticConfig(series=12, days=30, seed=5, clicks=False, stores=2)
    produce(settings, with_faults(iter(list(generate(config)) + planned_promotions(config, ahead_days=7)),
                                  malformed=0.0, duplicates=0.0))
    result = subprocess.run([*TIDECAST, "run", "--until-idle", "3"], env=env_for(settings), capture_output=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-3000:]

    client = redis.Redis.from_url(settings.redis_url)
    key = RedisCheckpoints.key_for(settings.topic_prefix, "all")
    blob, published = client.get(key), read_forecasts(settings)
    assert blob is not None and published
    series = sorted({doc["series"] for doc in published})
    last = max(doc["origin"] for doc in published)  # start of the first target bucket of the last close
    buckets = Buckets(settings.bucket_seconds)
    day = to_iso(buckets.start_ms(buckets.index(from_iso(last)) + 1))  # the second bucket of the horizon
    store, sku = series[0].split(":", 1)
    scenarios = tmp_path / "scenarios.jsonl"
    scenarios.write_text("\n".join(json.dumps(row) for row in (
        {"scenario": "promo", "store": store, "sku": sku, "for": day, "promo": True},
        {"scenario": "no promo", "store": store, "sku": sku, "for": day, "promo": False},
        {"scenario": "closed", "store": store, "for": day, "open": False},
    )))

    run = subprocess.run([*TIDECAST, "whatif", str(scenarios), "--json"], env=env_for(settings), capture_output=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    doc = json.loads(run.stdout)
    assert {"last_closed", "bucket_seconds", "quantiles", "model_version", "scenarios"} <= doc.keys()
    assert [s["scenario"] for s in doc["scenarios"]] == ["promo", "no promo", "closed"]
    closed = doc["scenarios"][2]["series"]
    assert len(closed) == sum(name.startswith(store + ":") for name in series) > 1
    for scenario in doc["scenarios"]:
        for entry in scenario["series"]:
            assert entry["series"] in series and len(entry["buckets"]) == settings.horizon
            changed = [b["start"] for b in entry["buckets"] if b["changed"]]
            assert changed == [day]
            for b in entry["buckets"]:
                assert {"start", "changed", "baseline_plan", "plan", "baseline", "scenario", "difference"} <= b.keys()
                assert len(b["scenario"]["quantiles"]) == len(doc["quantiles"]) == len(settings.quantiles)
                assert b["difference"]["mean"] == pytest.approx(b["scenario"]["mean"] - b["baseline"]["mean"])

    table = subprocess.run([*TIDECAST, "whatif", str(scenarios)], env=env_for(settings), capture_output=True,
                           timeout=300)
    assert table.returncode == 0 and "scenario 'promo'" in table.stdout.decode(), table.stderr.decode()[-3000:]

    scenarios.write_text(json.dumps({"scenario": "x", "store": store, "sku": "no-such-sku", "promo": True}))
    bad = subprocess.run([*TIDECAST, "whatif", str(scenarios)], env=env_for(settings), capture_output=True,
                         timeout=300)
    assert bad.returncode == 2 and "unknown series" in bad.stderr.decode(), bad.stderr.decode()[-3000:]

    explained = subprocess.run([*TIDECAST, "explain", series[0], series[1], "--json"], env=env_for(settings),
                               capture_output=True, timeout=300)
    assert explained.returncode == 0, explained.stderr.decode()[-3000:]
    report = json.loads(explained.stdout)
    assert [e["series"] for e in report["series"]] == series[:2] and report["horizon"] == settings.horizon
    for e in report["series"]:
        assert set(e["contributions"]) == {"recent sales", "clicks and carts", "price", "promotion and other plans",
                                           "calendar", "identity and age"}
        parts = e["reference"] + sum(e["contributions"].values()) + e["residual"]
        assert parts == pytest.approx(e["median"], abs=1e-3) and e["published_median"] >= 0
    readable = subprocess.run([*TIDECAST, "explain", series[0]], env=env_for(settings), capture_output=True,
                              timeout=300)
    text = readable.stdout.decode()
    assert readable.returncode == 0 and "promotion and other plans" in text and "published median" in text, text
    unknown = subprocess.run([*TIDECAST, "explain", f"{store}:no-such-sku"], env=env_for(settings),
                             capture_output=True, timeout=300)
    assert unknown.returncode == 2 and "unknown series" in unknown.stderr.decode()

    assert client.get(key) == blob  # the checkpoint is unchanged
    assert client.get(LeasedCheckpoints.lease_key(settings.topic_prefix, "all")) is None  # no lease taken
    assert len(read_forecasts(settings)) == len(published)  # nothing published
