"""SIGTERM ends ``ingest``, ``forecast`` and ``run`` within 10 s with exit 0, having committed what they had (also
in the middle of a forecaster's catch-up); an ingest afterwards completes the windows exactly."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from dataclasses import replace

import pytest
import redis
from pipeline import TIDECAST, assert_windows_equal, env_for, produce, recount, stored_windows

from tidecast.config import Settings
from tidecast.models import checkpoint
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisCheckpoints, RedisWindowStore

pytestmark = pytest.mark.integration

EVENTS = 300_000
GRACE = 10.0


def start(settings: Settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*TIDECAST, *args], env=env_for(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def terminate_within_grace(process: subprocess.Popen) -> None:
    assert process.poll() is None, process.stderr.read().decode()[-3000:]
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still running {GRACE:g}s after SIGTERM")
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert time.monotonic() - sent < GRACE


def store_of(settings: Settings) -> RedisWindowStore:
    return RedisWindowStore(redis.Redis.from_url(settings.redis_url), settings.topic_prefix)


def last_closed(settings: Settings) -> int | None:
    blob = RedisCheckpoints(redis.Redis.from_url(settings.redis_url), settings.topic_prefix).load()
    return None if blob is None else checkpoint.loads(blob)["last_closed"]


def wait_for(condition, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)


def produced_events(settings: Settings, days: int = 28, clicks: bool = True) -> dict:
    docs = itertools.islice(generate(SyntheticConfig(series=150, days=days, seed=13, clicks=clicks)), EVENTS)
    return produce(settings, with_faults(docs, malformed=0.0, duplicates=0.01, seed=13))


def finish_ingest_and_check(settings: Settings, produced: dict) -> None:
    result = subprocess.run([*TIDECAST, "ingest", "--until-idle", "3"], env=env_for(settings), capture_output=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    store = store_of(settings)
    expected = recount(produced["valid"], settings.bucket_seconds)
    buckets = range(min(b for b, _ in expected), max(b for b, _ in expected) + 1)
    assert_windows_equal(stored_windows(store, buckets), expected)
    assert store.stats().counters["ingested"] == len(produced["valid"])


def test_sigterm_ends_ingest_mid_stream(settings: Settings) -> None:
    produced = produced_events(settings)
    worker = start(settings, "ingest")
    wait_for(lambda: store_of(settings).stats().counters["ingested"] >= 20_000, worker)
    terminate_within_grace(worker)
    finish_ingest_and_check(settings, produced)


def test_sigterm_ends_forecast_mid_catch_up(settings: Settings) -> None:
    settings = replace(settings, retention=90, idle_timeout_seconds=1)  # no clicks: those partitions idle
    produced = produced_events(settings, days=80, clicks=False)
    subprocess.run([*TIDECAST, "ingest", "--until-idle", "4"], env=env_for(settings), check=True, timeout=300,
                   capture_output=True)
    forecaster = start(settings, "forecast")
    first: list[int] = []

    def closing() -> bool:
        closed = last_closed(settings)
        if closed is not None and not first:
            first.append(closed)
        return closed is not None and closed - first[0] >= 3

    wait_for(closing, forecaster)
    terminate_within_grace(forecaster)
    finish_ingest_and_check(settings, produced)


def test_sigterm_ends_run_mid_catch_up(settings: Settings) -> None:
    # hourly buckets: the first poll's records span hundreds of closable buckets, a catch-up of far over 10 s
    settings = replace(settings, bucket_seconds=3600, retention=1500, idle_timeout_seconds=1)
    produced = produced_events(settings, days=50, clicks=False)
    job = start(settings, "run")
    wait_for(lambda: last_closed(settings) is not None, job)
    terminate_within_grace(job)
    finish_ingest_and_check(settings, produced)
