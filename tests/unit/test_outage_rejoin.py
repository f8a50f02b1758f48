"""A worker whose partition another worker committed, or whose membership lapsed, reloads its partitions from
the store and carries on (never exits with ``Fenced``); a partition it cannot load is retried before the next
batch, and a Redis outage past the outage timeout stops it."""

from __future__ import annotations

import time
from typing import ClassVar

import orjson
import pytest
import redis
from kafka import TopicPartition
from stand_ins import AssignedConsumer, offline_worker

from tidecast.config import Settings
from tidecast.consumers.heartbeat import View
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.stream.adapters.retry import OutageError
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

SETTINGS = Settings(topic_prefix="t.", outage_timeout_seconds=1)
TP = TopicPartition("t.sales", 0)
LOG = [Record(n, orjson.dumps({"event_id": f"e{n}", "type": "sale", "ts": 1_767_571_200_000 + n, "sku": "A",
                               "qty": 1})) for n in range(40)]


class FakeConsumer(AssignedConsumer):
    """One partition of ``LOG``, 10 records a poll from the position; ``before_poll[n]`` runs before poll n."""

    TOPICS: ClassVar[dict[str, set[int]]] = {"t.sales": {0}}

    def __init__(self, **config: object) -> None:
        super().__init__(**config)
        self.position_of = 0
        self.polls = 0
        self.before_poll: dict[int, object] = {}

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        self.polls += 1
        action = self.before_poll.get(self.polls)
        if callable(action):
            action()
        records = LOG[self.position_of:self.position_of + 10]
        self.position_of += len(records)
        return {TP: records} if records else {}

    def seek(self, tp, offset: int) -> None:
        self.position_of = offset

    def seek_to_beginning(self, tp) -> None:
        self.position_of = 0

    def position(self, tp) -> int:
        return self.position_of




@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> IngestWorker:
    return offline_worker(monkeypatch, FakeConsumer, SETTINGS, MemoryWindowStore())


def units(store: MemoryWindowStore) -> float:
    return store.read_bucket(Buckets(86_400).index(1_767_571_200_000))["all:A"][0]


def test_a_worker_whose_partition_was_committed_by_another_member_reloads_and_carries_on(
    worker: IngestWorker,
) -> None:
    inner: MemoryWindowStore = worker.store.store  # type: ignore[attr-defined]
    consumer: FakeConsumer = worker.consumer  # type: ignore[assignment]

    def another_member_commits() -> None:  # while this worker was paused, the partition's new owner went on
        worker.committer.drain()
        theirs = PartitionIngestor("t.sales", 0, Buckets(86_400), 7200_000, 56, inner.load_partition("t.sales", 0))
        assert inner.commit(theirs.apply(LOG[10:25]))

    consumer.before_poll[2] = another_member_commits
    worker.run(until_idle=0.3)  # no Fenced
    assert inner.load_partition("t.sales", 0).next_offset == 40
    assert units(inner) == 40  # every record once: ours, theirs, then ours again from their offset


def test_a_lapsed_membership_drops_the_speculative_state_and_takes_the_partition_again(
    worker: IngestWorker,
) -> None:
    inner: MemoryWindowStore = worker.store.store  # type: ignore[attr-defined]
    consumer: FakeConsumer = worker.consumer  # type: ignore[assignment]
    heartbeat = worker.assignment.heartbeat
    latest = heartbeat.latest

    def lapse() -> None:  # this worker was counted out; the partition's new owner went on meanwhile
        worker.committer.drain()
        stored = inner.load_partition("t.sales", 0)
        theirs = PartitionIngestor("t.sales", 0, Buckets(86_400), 7200_000, 56, stored)
        assert inner.commit(theirs.apply(LOG[stored.next_offset:stored.next_offset + 10]))
        lapsed = [View([worker.assignment.ownership.me], time.monotonic(), lapsed=True)]
        heartbeat.latest = lambda: lapsed.pop() if lapsed else latest()  # type: ignore[method-assign]

    consumer.before_poll[3] = lapse
    worker.run(until_idle=0.5)
    assert units(inner) == 40


def test_a_partition_that_cannot_be_loaded_is_retried_and_a_long_outage_stops_the_worker(
    worker: IngestWorker,
) -> None:
    def refused(*args: object) -> None:
        raise redis.ConnectionError("Connection refused")

    worker.store.store.load_partition = refused  # type: ignore[attr-defined]
    with pytest.raises(OutageError, match="Redis unreachable for 1s"):
        worker.run(until_idle=5)
