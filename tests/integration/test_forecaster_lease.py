"""One forecaster per checkpoint: a second one is refused, and one that lost its lease can no longer write."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import redis

from tidecast.config import Endpoints
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
