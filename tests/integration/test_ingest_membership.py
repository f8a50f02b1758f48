"""The ingest workers split the partitions through their membership in Redis, and a worker that stops while the
split changes never stalls the others (Kafka's group protocol wedged there on the embedded broker).

The membership set on the session's Redis: beats, lapses and leaves. Then three real ``tidecast ingest``
processes on one stream::

    A  ==== holds half ==========| SIGTERM (leaves)
    B  ==== holds half ===X SIGKILL (lapses after 6 s)
    C                     starts ....... holds everything; every event ingested once
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from pipeline import TIDECAST, assert_windows_equal, env_for, produce, recount, stored_windows

from tidecast.config import Settings
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.ingest_members import RedisMembership
from tidecast.stream.adapters.redis_store import RedisWindowStore

pytestmark = pytest.mark.integration


def test_members_beat_lapse_and_leave(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url or "")
    members = RedisMembership(client, settings.topic_prefix)
    assert members.beat("a", 400) == ["a"]
    assert members.beat("b", 5000) == ["a", "b"]
    time.sleep(0.5)
    assert members.beat("b", 5000) == ["b"]  # a lapsed
    members.beat("c", 5000)
    members.leave("b")
    assert members.beat("c", 5000) == ["c"]
    members.beat("probe", 1)
    assert client.pttl(members.key) > 5000  # a short-lived caller never shortens the set's life
    client.delete(members.key)  # Redis lost the set: the next beat starts it again
    assert members.beat("c", 5000) == ["c"]


def test_workers_stopping_while_the_split_changes_leave_every_event_ingested_once(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    stream = list(with_faults(itertools.islice(generate(SyntheticConfig(series=60, days=10, seed=3)), 20_000),
                              malformed=0.0, duplicates=0.0, seed=3))
    first = produce(settings, stream[:10_000])["valid"]
    store = RedisWindowStore(redis.Redis.from_url(settings.redis_url or ""), settings.topic_prefix)
    members = RedisMembership(store.client, settings.topic_prefix)
    procs: list[subprocess.Popen] = []

    def worker() -> subprocess.Popen:
        with (tmp_path / f"worker-{len(procs)}.log").open("wb") as log:
            proc = subprocess.Popen([*TIDECAST, "ingest"], env=env_for(settings), stdout=subprocess.DEVNULL,
                                    stderr=log)
        procs.append(proc)
        return proc

    try:
        a, b = worker(), worker()
        _until(lambda: len(members.beat("observer", 1)) >= 3, 30, "A and B never joined", tmp_path)
        members.leave("observer")
        _until(lambda: store.stats().counters["ingested"] >= len(first), 60, "A and B never read the first half",
               tmp_path)
        b.send_signal(signal.SIGKILL)
        b.wait()
        worker()  # C
        time.sleep(1.5)  # C has beaten; B's membership is still live: the split is changing
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=30) == 0, (tmp_path / "worker-0.log").read_text()[-800:]
        docs = first + produce(settings, stream[10_000:])["valid"]
        _until(lambda: store.stats().counters["ingested"] >= len(docs), 60, "C did not take every partition", tmp_path)
        expected = recount(docs, settings.bucket_seconds)
        assert_windows_equal(stored_windows(store, range(min(b for b, _ in expected),
                                                         max(b for b, _ in expected) + 1)), expected)
        assert store.stats().counters["ingested"] == len(docs)
    finally:
        for proc in procs:
            if proc.pid > 0 and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()


def _until(done: Callable[[], bool], timeout: float, message: str, logs: Path) -> None:
    """Wait for ``done``; on time-out fail with ``message`` and the workers' logs."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            tails = {log.name: log.read_text(errors="replace")[-600:] for log in sorted(logs.glob("worker-*.log"))}
            raise AssertionError(f"{message}; worker logs: {tails}")
        time.sleep(0.1)
