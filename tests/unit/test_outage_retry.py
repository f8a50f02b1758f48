"""Riding out outages: capped backoff with one log line at the start and one at the end, exactly-once commits
across a lost connection, DLQ acknowledgements waited for through a broker outage."""

from __future__ import annotations

import logging

import orjson
import pytest
import redis
from kafka.errors import KafkaTimeoutError

from tidecast.config import ConfigError, Settings
from tidecast.consumers.committer import Committer, Fenced
from tidecast.stream.adapters.retry import REDIS_ERRORS, Outage, OutageError, RetryingStore
from tidecast.stream.ingest import IngestBatch, PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def outage(clock: Clock, timeout: float = 60) -> Outage:
    return Outage("Redis", timeout, REDIS_ERRORS, clock=clock, sleep=clock.sleep)


def failing(times: int, error: BaseException, result: object = "ok"):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return call


def test_backoff_doubles_up_to_a_cap_and_logs_one_line_each_way(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    redis_outage = outage(clock)
    with caplog.at_level(logging.WARNING):
        assert redis_outage.call(failing(8, redis.ConnectionError("refused"))) == "ok"
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("Redis unreachable (refused); retrying for up to 60s")
    assert lines[1].startswith("Redis answers again after 16.3s")


def test_an_outage_longer_than_the_timeout_fails_with_a_clear_message() -> None:
    clock = Clock()
    with pytest.raises(OutageError, match=r"Redis unreachable for 60s \(TIDECAST_OUTAGE_TIMEOUT\): Timeout reading"):
        outage(clock).call(failing(10**6, redis.TimeoutError("Timeout reading from socket")))
    assert clock.now == 60


def test_other_errors_are_not_retried() -> None:
    with pytest.raises(ValueError, match="bad batch"):
        outage(Clock()).call(failing(1, ValueError("bad batch")))


def test_the_outage_timeout_is_a_setting() -> None:
    assert Settings().outage_timeout_seconds == 60
    assert Settings.from_env({"TIDECAST_OUTAGE_TIMEOUT": "5m"}).outage_timeout_seconds == 300
    with pytest.raises(ConfigError, match="TIDECAST_OUTAGE_TIMEOUT"):
        Settings.from_env({"TIDECAST_OUTAGE_TIMEOUT": "0s"})


def sale(offset: int) -> Record:
    doc = {"event_id": f"e{offset}", "type": "sale", "ts": 1_767_571_200_000 + offset, "sku": "A", "qty": 1}
    return Record(offset, orjson.dumps(doc))


class LandsThenDrops(MemoryWindowStore):
    """A store whose first commit lands but whose reply is lost (the connection dropped on the way back)."""

    def __init__(self, drops: int = 1) -> None:
        super().__init__()
        self.drops = drops

    def commit(self, batch: IngestBatch) -> bool:
        landed = super().commit(batch)
        if self.drops:
            self.drops -= 1
            raise redis.ConnectionError("Connection closed by server.")
        return landed


def units(store: MemoryWindowStore) -> float:
    return store.read_bucket(Buckets(86_400).index(1_767_571_200_000))["all:A"][0]


def test_a_retried_commit_that_had_landed_counts_once_and_is_not_fenced() -> None:
    inner = LandsThenDrops()
    store = RetryingStore(inner, outage(Clock()))
    ing = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30, store.load_partition("sales", 0))
    committer = Committer(store)
    for offset in range(3):
        batch = ing.apply([sale(offset)])
        ing.adopt(batch)
        committer.submit(batch)
    committer.close()  # no Fenced
    assert inner.load_partition("sales", 0).next_offset == 3
    assert units(inner) == 3


def test_a_fenced_commit_without_a_lost_connection_stays_fenced() -> None:
    inner = MemoryWindowStore()
    theirs = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30, inner.load_partition("sales", 0))
    mine = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30, inner.load_partition("sales", 0))
    assert inner.commit(theirs.apply([sale(0)]))
    committer = Committer(RetryingStore(inner, outage(Clock())))
    committer.submit(mine.apply([sale(0)]))
    with pytest.raises(Fenced):
        committer.drain()


class SlowAck:
    """A DLQ acknowledgement that comes after ``waits`` timed-out waits (the broker was away)."""

    def __init__(self, waits: int) -> None:
        self.waits = waits

    def get(self, timeout: float | None = None) -> object:
        if self.waits:
            self.waits -= 1
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        return None


def test_dlq_acknowledgements_are_waited_for_through_a_broker_outage() -> None:
    clock = Clock()
    store = MemoryWindowStore()
    ing = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30, store.load_partition("sales", 0))
    acks = Outage("Kafka", 60, (KafkaTimeoutError,), clock=clock, sleep=clock.sleep)
    committer = Committer(store, acks=acks)
    committer.submit(ing.apply([sale(0)]), [SlowAck(waits=3)])
    committer.close()
    assert units(store) == 1
    committer = Committer(store, acks=Outage("Kafka", 1, (KafkaTimeoutError,), clock=clock, sleep=clock.sleep))
    committer.submit(ing.apply([sale(1)]), [SlowAck(waits=10**6)])
    with pytest.raises(OutageError, match="Kafka unreachable for 1s"):
        committer.close()
