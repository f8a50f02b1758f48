"""One forecaster per checkpoint: a second one is refused, and one that lost its lease can no longer write."""

from __future__ import annotations

import itertools
import logging
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from pipeline import TIDECAST, env_for

from tidecast.config import Endpoints, Settings
from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints, LeaseHeld, LeaseLost

pytestmark = pytest.mark.integration
_names = itertools.count()


@pytest.fixture
def client(servers: Endpoints) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(servers.redis)
    yield c
    c.close()


def pair(client: redis.Redis, ttl_ms: int = 30_000) -> tuple[LeasedCheckpoints, LeasedCheckpoints]:
    name = f"lease-test-{next(_names)}"
    return LeasedCheckpoints(client, "t.", name, ttl_ms), LeasedCheckpoints(client, "t.", name, ttl_ms)


def test_a_second_forecaster_on_the_same_checkpoint_is_refused(client: redis.Redis) -> None:
    first, second = pair(client)
    first.acquire()
    with pytest.raises(LeaseHeld, match=first.owner):
        second.acquire()
    first.save(b"state 1")
    assert second.load() == b"state 1"
    first.release()
    second.acquire()  # free once released
    second.save(b"state 2")
    assert first.load() == b"state 2"


def test_a_forecaster_that_lost_its_lease_cannot_write(client: redis.Redis) -> None:
    first, second = pair(client)
    first.acquire()
    first.save(b"before")
    client.delete(first.lease)  # as if it stalled past the time to live...
    second.acquire()  # ...and another forecaster took over
    with pytest.raises(LeaseLost):
        first.save(b"stale")
    with pytest.raises(LeaseLost):
        first.renew()
    first.release()  # releasing what it no longer holds leaves the new holder alone
    assert second.load() == b"before" and client.get(second.lease) == second.owner.encode()


def test_saves_and_renewals_extend_the_lease(client: redis.Redis) -> None:
    lease, _ = pair(client, ttl_ms=5_000)
    lease.acquire()
    client.pexpire(lease.lease, 1_000)
    lease.renew()
    assert client.pttl(lease.lease) > 4_000
    client.pexpire(lease.lease, 1_000)
    lease.save(b"x")
    assert client.pttl(lease.lease) > 4_000
    lease.release()
    assert client.get(lease.lease) is None


def test_the_cli_refuses_a_second_forecaster(settings: Settings) -> None:
    first = subprocess.Popen([*TIDECAST, "forecast"], env=env_for(settings), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        lease = LeasedCheckpoints.lease_key(settings.topic_prefix, "all")
        client = redis.Redis.from_url(settings.redis_url)
        deadline = time.monotonic() + 60
        while client.get(lease) is None:  # the first forecaster has started and holds the lease
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the first forecaster never took the lease"
            time.sleep(0.1)
        second = subprocess.run([*TIDECAST, "forecast", "--until-idle", "1"], env=env_for(settings),
                                capture_output=True, timeout=120)
        assert second.returncode == 1, second.stderr.decode()[-2000:]
        assert b"holds the lease" in second.stderr and b"Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert first.returncode == 0
    assert client.get(lease) is None  # a clean stop gives the lease up


def test_a_lapsed_lease_is_taken_again_while_the_checkpoint_is_the_one_last_written(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = pair(client)
    first.acquire()
    first.save(b"state 1")
    first.save(b"state 1")  # a save retried after a lost connection: the same write again
    client.delete(first.lease)  # a pause longer than the time to live
    with caplog.at_level(logging.WARNING):
        first.renew()
    assert client.get(first.lease) == first.owner.encode() and client.pttl(first.lease) > 25_000
    assert "had lapsed" in caplog.text
    client.delete(first.lease)
    first.save(b"state 2")  # a save finds it lapsed too
    assert first.load() == b"state 2" and client.get(first.lease) == first.owner.encode()


def test_a_save_that_landed_unseen_before_a_long_pause_is_taken_again_by_its_retry(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by CI: Redis ran a save and was paused (35 s, past the lease's 30 s) before its reply came back;
    the retry found the lease lapsed and the checkpoint not the one last acknowledged, and the forecaster
    stopped (LeaseLost), though the checkpoint was its own write."""
    first, _ = pair(client)
    first.acquire()
    first.save(b"state 1")
    client.set(first.key, b"state 2")  # the save of state 2 ran; its reply was lost
    client.delete(first.lease)  # the pause outlived the lease
    with caplog.at_level(logging.WARNING):
        first.save(b"state 2")  # its retry
    assert client.get(first.lease) == first.owner.encode() and first.load() == b"state 2"
    assert "had lapsed" in caplog.text
    client.set(first.key, b"state 3 by another")
    client.delete(first.lease)
    with pytest.raises(LeaseLost):  # a blob this save is not writing is still someone else's
        first.save(b"state 4")


def test_a_lease_lost_with_its_checkpoint_is_taken_again_and_the_checkpoint_written_at_the_next_save(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = pair(client)
    first.acquire()
    first.save(b"state 1")
    client.delete(first.lease, first.key)  # Redis lost its data (FLUSHALL, a restart without persistence)
    with caplog.at_level(logging.WARNING):
        first.renew()
    assert "the checkpoint is gone from Redis (data lost?)" in caplog.text
    assert client.get(first.lease) == first.owner.encode() and client.get(first.key) is None
    first.save(b"state 2")
    assert client.get(first.key) == b"state 2"


def test_a_lapsed_lease_is_lost_when_another_forecaster_wrote_the_checkpoint(client: redis.Redis) -> None:
    first, second = pair(client)
    first.acquire()
    first.save(b"state 1")
    client.delete(first.lease)
    second.acquire()
    second.save(b"state 2 by another")
    second.release()  # the lease is free again, but the checkpoint is not the one the first wrote
    with pytest.raises(LeaseLost):
        first.renew()
    with pytest.raises(LeaseLost):
        first.save(b"stale")
    assert client.get(first.key) == b"state 2 by another" and client.get(first.lease) is None


def test_a_fresh_forecaster_retakes_a_lapsed_lease_only_while_no_checkpoint_exists(client: redis.Redis) -> None:
    first, second = pair(client)
    assert first.load() is None
    first.acquire()
    client.delete(first.lease)
    first.renew()  # nothing was written by anyone: taken again
    client.delete(first.lease)
    second.acquire()
    second.save(b"by another")
    second.release()
    with pytest.raises(LeaseLost):
        first.renew()


def test_a_long_close_keeps_its_lease_until_it_makes_no_progress(client: redis.Redis) -> None:
    first, second = pair(client, ttl_ms=1000)
    first.acquire()
    first.save(b"state 1")
    with first.kept(limit=60, every=0.2):  # a close three times as long as the time to live
        time.sleep(3)
        with pytest.raises(LeaseHeld):
            second.acquire()
    first.save(b"state 2")  # still this forecaster's
    with first.kept(limit=1.5, every=0.2):  # no checkpoint written for 1.5 s: the renewals stop
        time.sleep(3.5)
        second.acquire()  # the lease lapsed: a standby takes over
    with pytest.raises(LeaseLost):
        first.save(b"state 3")


def test_a_renewal_that_finds_the_lease_lost_is_raised_when_the_close_ends(client: redis.Redis) -> None:
    first, second = pair(client, ttl_ms=1000)
    first.acquire()
    first.save(b"state 1")
    client.delete(first.lease)
    second.acquire()
    second.save(b"state of the second")
    with pytest.raises(LeaseLost), first.kept(every=0.1):
        time.sleep(0.5)
