"""``tidecast ingest --processes 2``: two worker processes split the partitions and ingest every event once; one
killed mid-stream leaves its partitions to the other; SIGTERM to the parent stops both cleanly."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from pipeline import TIDECAST, assert_windows_equal, env_for, produce, recount, stored_windows

from tidecast.config import Settings
from tidecast.infra.processes import pid_alive
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.redis_store import RedisWindowStore

pytestmark = pytest.mark.integration


def stream(settings: Settings, events: int) -> list[dict]:
    docs = itertools.islice(generate(SyntheticConfig(series=80, days=20, seed=7)), events)
    return produce(settings, with_faults(docs, malformed=0.0, duplicates=0.01, seed=7))["valid"]


def check_windows(settings: Settings, docs: list[dict]) -> None:
    store = RedisWindowStore(redis.Redis.from_url(settings.redis_url or ""), settings.topic_prefix)
    expected = recount(docs, settings.bucket_seconds)
    assert_windows_equal(stored_windows(store, range(min(b for b, _ in expected), max(b for b, _ in expected) + 1)),
                         expected)
    assert store.stats().counters["ingested"] == len(docs)


def children_of(parent: int) -> list[int]:
    """The live child processes of ``parent`` (from /proc: the fourth field of /proc/PID/stat is the parent)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return sorted(found)


def test_two_processes_split_the_partitions_and_ingest_every_event_once(settings: Settings) -> None:
    """With the topic prefix given as a top-level flag only: every worker must get the parent's settings."""
    docs = stream(settings, 40_000)
    env = {k: v for k, v in env_for(settings).items() if k != "TIDECAST_TOPIC_PREFIX"}
    result = subprocess.run([*TIDECAST, "--topic-prefix", settings.topic_prefix, "ingest", "--processes", "2",
                             "--until-idle", "3"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 ingest workers" in result.stderr
    finals = [int(n.replace(",", "")) for n in re.findall(r"ingest: ([\d,]+) records", result.stderr)][-2:]
    assert len(finals) == 2 and all(n > 0 for n in finals), result.stderr[-2000:]  # both took a share
    check_windows(settings, docs)


def test_a_worker_killed_mid_stream_leaves_its_partitions_to_the_other(settings: Settings) -> None:
    docs = stream(settings, 60_000)
    parent = subprocess.Popen([*TIDECAST, "ingest", "--processes", "2", "--until-idle", "12"], env=env_for(settings),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = RedisWindowStore(redis.Redis.from_url(settings.redis_url or ""), settings.topic_prefix)
    deadline = time.monotonic() + 120
    while store.stats().counters.get("ingested", 0) < 5_000:
        assert parent.poll() is None and time.monotonic() < deadline, parent.stderr.read()[-2000:]
        time.sleep(0.05)
    victim = children_of(parent.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=300)
    assert parent.returncode == 128 + signal.SIGKILL, stderr[-2000:]  # the group reports the killed worker
    check_windows(settings, docs)


def test_sigterm_to_the_parent_stops_every_worker_cleanly(settings: Settings) -> None:
    stream(settings, 30_000)
    parent = subprocess.Popen([*TIDECAST, "ingest", "--processes", "2"], env=env_for(settings),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(children := children_of(parent.pid)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3)
    parent.send_signal(signal.SIGTERM)
    _, stderr = parent.communicate(timeout=30)
    assert parent.returncode == 0, stderr[-2000:]
    assert not any(pid_alive(pid) for pid in children)
