"""Outages on servers of this module's own (so pausing them disturbs no other test): valkey killed (the supervisor
starts it again on its port, the broker and its topics stay), valkey paused 25 s mid-ingest (the ingest rides it
out, windows exact), and an ingest worker paused past the session timeout while another takes its partitions
(it rejoins instead of exiting with ``Fenced``; windows exact).

Signals go only to PIDs this test started or read from its own servers' state file, never to PID <= 0.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer
from pipeline import assert_windows_equal, produce, recount, start_ingest, stored_windows

from tidecast import infra
from tidecast.config import Endpoints, Settings
from tidecast.infra.processes import pid_runs
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.adapters.redis_store import RedisWindowStore

pytestmark = pytest.mark.integration

EVENTS = 150_000
_counter = itertools.count()


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Endpoints]]:
    home = tmp_path_factory.mktemp("outage-infra")
    with infra.running(Settings(home=home)) as endpoints:
        yield home, endpoints


def valkey_pid(home: Path) -> int:
    state = infra.read_state(Settings(home=home))
    assert state is not None
    pid = state["pids"]["redis"]
    assert isinstance(pid, int) and pid > 0 and pid_runs(pid, "valkey-server")
    return pid


def fresh_settings(own: tuple[Path, Endpoints], tmp_path: Path) -> Settings:
    _, endpoints = own
    s = Settings(kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis, home=tmp_path,
                 topic_prefix=f"o{os.getpid()}-{next(_counter)}.")
    create_topics(endpoints.kafka, s.topics.all, s.partitions)
    return s


def store_of(settings: Settings) -> RedisWindowStore:
    return RedisWindowStore(redis.Redis.from_url(settings.redis_url), settings.topic_prefix)


def ingest(settings: Settings, until_idle: float) -> subprocess.Popen:
    return start_ingest(settings, until_idle)


def finished(worker: subprocess.Popen, timeout: float = 300) -> str:
    _, stderr = worker.communicate(timeout=timeout)
    text = stderr.decode(errors="replace")
    assert worker.returncode == 0, text[-3000:]
    return text


def wait_ingested(settings: Settings, at_least: int, workers: list[subprocess.Popen]) -> None:
    store, deadline = store_of(settings), time.monotonic() + 120
    while store.stats().counters["ingested"] < at_least:
        assert all(w.poll() is None for w in workers), "a worker ended early"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)


def check_exact(settings: Settings, produced: dict) -> None:
    store = store_of(settings)
    expected = recount(produced["valid"], settings.bucket_seconds)
    buckets = range(min(b for b, _ in expected), max(b for b, _ in expected) + 1)
    assert_windows_equal(stored_windows(store, buckets), expected)
    stats = store.stats()
    assert stats.counters["ingested"] == len(produced["valid"]) == EVENTS
    assert stats.counters["duplicates"] == produced["duplicates"]


def produce_events(settings: Settings) -> dict:
    docs = itertools.islice(generate(SyntheticConfig(series=200, days=28, seed=11)), EVENTS)
    return produce(settings, with_faults(docs, malformed=0.0, duplicates=0.01, seed=11))


def test_a_killed_valkey_comes_back_on_its_port_and_the_broker_keeps_its_topics(
    own: tuple[Path, Endpoints],
) -> None:
    home, endpoints = own
    pid = valkey_pid(home)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (state := infra.read_state(Settings(home=home))) is None or state["pids"]["redis"] == pid:
        assert time.monotonic() < deadline, "valkey was not restarted"
        time.sleep(0.1)
    assert valkey_pid(home) != pid
    assert redis.Redis.from_url(endpoints.redis).ping()  # the same URL: the same port
    assert infra.find(Settings(home=home)) == endpoints  # the supervisor still runs
    consumer = KafkaConsumer(bootstrap_servers=endpoints.kafka)
    try:
        assert Settings().topics.sales in consumer.topics()  # the broker answers and kept its topics
    finally:
        consumer.close()


def test_ingest_rides_out_valkey_paused_for_25_seconds(own: tuple[Path, Endpoints], tmp_path: Path) -> None:
    settings = fresh_settings(own, tmp_path)
    produced = produce_events(settings)
    worker = ingest(settings, until_idle=5)
    pid = valkey_pid(own[0])
    try:
        wait_ingested(settings, 5_000, [worker])
        os.kill(pid, signal.SIGSTOP)
        time.sleep(25)
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]  # still waiting, not dead
    finally:
        os.kill(pid, signal.SIGCONT)
    stderr = finished(worker)
    assert "Redis unreachable" in stderr and "Redis answers again" in stderr
    check_exact(settings, produced)


def test_a_worker_paused_past_the_session_timeout_rejoins(own: tuple[Path, Endpoints], tmp_path: Path) -> None:
    settings = replace(fresh_settings(own, tmp_path), idle_timeout_seconds=2)
    produced = produce_events(settings)
    first = ingest(settings, until_idle=10)
    wait_ingested(settings, 3_000, [first])
    second = ingest(settings, until_idle=10)
    assert first.pid > 0
    wait_ingested(settings, 20_000, [first, second])
    os.kill(first.pid, signal.SIGSTOP)  # past the 6 s session timeout: the second worker takes every partition
    try:
        time.sleep(12)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    first_err, second_err = finished(first), finished(second)
    assert "Fenced" not in first_err + second_err
    assert "lost a partition" in first_err  # it did lose its membership, and came back
    check_exact(settings, produced)
