"""The forecaster through outages, on servers of this module's own (pausing them disturbs no other test): valkey
paused 35 s (longer than the lease's 30 s) mid-run, Redis emptied (``FLUSHALL``) under a running forecaster
and the topics ingested again, and the broker paused 20 s while a close is published. Each time the forecaster
carries on, exits 0, and every close it made is on the forecast topic with its deterministic ids.

Signals go only to PIDs read from this module's own servers' state file (checked > 0 and running the right
program), never to PID <= 0; every process a test starts is waited for or killed by its handle.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pipeline import TIDECAST, env_for, produce
from tail_reader import read_forecasts

from tidecast import infra
from tidecast.config import Endpoints, Settings
from tidecast.infra.processes import pid_runs
from tidecast.models import checkpoint
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.adapters.redis_store import RedisCheckpoints, RedisWindowStore
from tidecast.stream.forecast_message import forecast_id
from tidecast.stream.timebuckets import Buckets, from_iso

pytestmark = pytest.mark.integration

_counter = itertools.count()


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Endpoints]]:
    home = tmp_path_factory.mktemp("forecaster-outage-infra")
    with infra.running(Settings(home=home)) as endpoints:
        yield home, endpoints


def server_pid(home: Path, name: str, program: str) -> int:
    """The PID of this module's ``name`` server (``redis`` or ``kafka``), from its own state file."""
    state = infra.read_state(Settings(home=home))
    assert state is not None
    pid = state["pids"][name]
    assert isinstance(pid, int) and pid > 0 and pid_runs(pid, program)
    return pid


def fresh_settings(own: tuple[Path, Endpoints], tmp_path: Path) -> Settings:
    _, endpoints = own
    s = Settings(kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis, home=tmp_path, retention=90,
                 idle_timeout_seconds=1, topic_prefix=f"f{os.getpid()}-{next(_counter)}.")
    create_topics(endpoints.kafka, s.topics.all, s.partitions)
    return s


def start(settings: Settings, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([*TIDECAST, *args], env={**env_for(settings), **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen, timeout: float = 180) -> str:
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()  # this test's own child, by its handle
            process.wait()
    text = stderr.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text


@contextlib.contextmanager
def killed_on_failure(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``process`` is killed (by its handle) if the block fails, so that the failure shows, not a wait."""
    try:
        yield process
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait()
        raise


def ingest(settings: Settings) -> None:
    finished(start(settings, "ingest", "--until-idle", "4"))


def docs(days: int) -> list[dict]:
    return list(generate(SyntheticConfig(series=100, days=days, seed=5, clicks=False)))


def last_closed(settings: Settings) -> int | None:
    blob = RedisCheckpoints(redis.Redis.from_url(settings.redis_url), settings.topic_prefix).load()
    return None if blob is None else checkpoint.loads(blob)["last_closed"]


def closable_through(settings: Settings) -> int:
    """The newest bucket every input partition's watermark has passed (what a caught-up forecaster closed)."""
    stored = RedisWindowStore(redis.Redis.from_url(settings.redis_url), settings.topic_prefix).max_event_times()
    marks = {name: ms for name, ms in stored.items() if name.rpartition(":")[0] in settings.topics.inputs}
    assert len(marks) == len(settings.topics.inputs) * settings.partitions  # plans' watermarks close nothing
    buckets = Buckets(settings.bucket_seconds)
    return min(buckets.index(ms - settings.lateness_seconds * 1000) for ms in marks.values()) - 1


def wait_until(check, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert process.poll() is None, process.stderr.read().decode()[-3000:] if process.stderr else ""
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def paused(pid: int, seconds: float, process: subprocess.Popen) -> None:
    """SIGSTOP ``pid`` (a server of this module's) for ``seconds``; ``process`` must still run at the end."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
        assert process.poll() is None, "the forecaster ended during the outage"
    finally:
        os.kill(pid, signal.SIGCONT)


def published(settings: Settings) -> dict[int, dict[str, dict]]:
    """{origin bucket: {series: doc}}; every id is the deterministic one and a duplicate is the same forecast."""
    buckets = Buckets(settings.bucket_seconds)
    lineage = f"{settings.topic_prefix}forecaster:all"
    by_origin: dict[int, dict[str, dict]] = {}
    for doc in read_forecasts(settings):
        assert doc["forecast_id"] == forecast_id(doc["series"], doc["origin"], settings.bucket_seconds, lineage)
        row = by_origin.setdefault(buckets.index(from_iso(doc["origin"])), {})
        earlier = row.setdefault(doc["series"], doc)
        assert (earlier["values"], earlier["model_version"]) == (doc["values"], doc["model_version"])
    return by_origin


def check_every_close_published(settings: Settings, first_published: int) -> dict[int, dict[str, dict]]:
    """The forecaster closed every closable bucket and published every close from ``first_published`` on (a
    backlog's stale closes are learned, not published), each for (nearly) every series; model versions go up
    by one per close (the in-memory model was kept throughout)."""
    closed = closable_through(settings)
    by_origin = published(settings)
    assert sorted(by_origin) == list(range(first_published + 1, closed + 2))
    assert all(len(row) >= 90 for row in by_origin.values())
    versions = [next(iter(by_origin[origin].values()))["model_version"] for origin in sorted(by_origin)]
    assert [b - a for a, b in itertools.pairwise(versions)] == [1] * (len(versions) - 1)
    return by_origin


def test_the_forecaster_rides_out_valkey_paused_past_its_lease(own: tuple[Path, Endpoints], tmp_path: Path) -> None:
    settings = fresh_settings(own, tmp_path)
    produce(settings, with_faults(docs(45), 0.0, 0.0))
    ingest(settings)
    with killed_on_failure(start(settings, "forecast", "--until-idle", "5")) as forecaster:
        wait_until(lambda: last_closed(settings) is not None, forecaster, "the forecaster closed nothing")
        paused(server_pid(own[0], "redis", "valkey-server"), 35, forecaster)
    stderr = finished(forecaster)
    assert "Redis unreachable" in stderr and "Redis answers again" in stderr
    assert "had lapsed" in stderr  # 35 s > the lease's 30 s: taken again, nobody had written the checkpoint
    assert last_closed(settings) == closable_through(settings)
    check_every_close_published(settings, closable_through(settings) - settings.horizon + 1)


def test_the_forecaster_survives_flushall_and_carries_on_when_windows_come_back(
    own: tuple[Path, Endpoints], tmp_path: Path
) -> None:
    settings = fresh_settings(own, tmp_path)
    everything = docs(40)
    cut = len(everything) * 3 // 4
    produce(settings, with_faults(everything[:cut], 0.0, 0.0))
    ingest(settings)
    before = closable_through(settings)
    with killed_on_failure(start(settings, "forecast", "--until-idle", "15")) as forecaster:
        wait_until(lambda: last_closed(settings) == before, forecaster, "the forecaster did not catch up")
        client = redis.Redis.from_url(settings.redis_url)
        client.flushall()  # everything: windows, offsets, the checkpoint and the lease
        lease = LeasedCheckpoints.lease_key(settings.topic_prefix, "all")
        wait_until(lambda: client.get(lease) is not None, forecaster, "the lease was not taken again")
        produce(settings, with_faults(everything[cut:], 0.0, 0.0))
        ingest(settings)  # a fresh ingest: the whole topics again, from the beginning
    stderr = finished(forecaster)
    assert "the checkpoint is gone from Redis (data lost?)" in stderr
    after = closable_through(settings)
    assert after > before and last_closed(settings) == after  # closes went on; the checkpoint written again
    by_origin = check_every_close_published(settings, before - settings.horizon + 1)
    # the model was not reset by the flush: versions count every close since the first bucket
    first = min(RedisWindowStore(redis.Redis.from_url(settings.redis_url), settings.topic_prefix).buckets())
    assert next(iter(by_origin[after + 1].values()))["model_version"] == after - first + 1


def test_the_forecaster_publishes_through_a_paused_broker(own: tuple[Path, Endpoints], tmp_path: Path) -> None:
    settings = fresh_settings(own, tmp_path)
    produce(settings, with_faults(docs(45), 0.0, 0.0))
    ingest(settings)
    # a publish gives up after 5 s: the close is published again until the broker answers
    through = closable_through(settings)
    with killed_on_failure(start(settings, "forecast", "--until-idle", "5",
                                 env={"TIDECAST_PUBLISH_TIMEOUT": "5s"})) as forecaster:
        # paused just before the first close that publishes (a backlog's older closes publish nothing)
        wait_until(lambda: (last_closed(settings) or 0) >= through - settings.horizon - 1, forecaster,
                   "the forecaster did not reach its publishing closes")
        paused(server_pid(own[0], "kafka", "tansu"), 20, forecaster)
    stderr = finished(forecaster)
    assert "Kafka (forecasts) unreachable" in stderr and "Kafka (forecasts) answers again" in stderr
    assert last_closed(settings) == closable_through(settings)
    check_every_close_published(settings, closable_through(settings) - settings.horizon + 1)
