"""A worker that lost its group membership rejoins: its fenced commits make it reload its partitions from the
store and carry on (never exit with ``Fenced``), and its rebalance callbacks never raise into kafka-python."""

from __future__ import annotations

import orjson
import pytest
import redis
from kafka import TopicPartition

from tidecast.config import Settings
from tidecast.consumers import ingest_worker
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.stream.adapters.retry import OutageError
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

SETTINGS = Settings(topic_prefix="t.", outage_timeout_seconds=1)
TP = TopicPartition("t.sales", 0)
LOG = [Record(n, orjson.dumps({"event_id": f"e{n}", "type": "sale", "ts": 1_767_571_200_000 + n, "sku": "A",
                               "qty": 1})) for n in range(40)]


class FakeConsumer:
    """One partition of ``LOG``, 10 records a poll from the position; ``before_poll[n]`` runs before poll n."""

    def __init__(self, **config: object) -> None:
        self.position_of = 0
        self.polls = 0
        self.listener = None
        self.before_poll: dict[int, object] = {}

    def subscribe(self, topics, listener) -> None:
        self.listener = listener

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        self.polls += 1
        if self.polls == 1:
            self.listener.on_partitions_assigned([TP])
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

    def commit_async(self, offsets) -> None:
        pass

    def close(self, autocommit: bool = False) -> None:
        pass


class FakeProducer:
    def __init__(self, **config: object) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> IngestWorker:
    monkeypatch.setattr(ingest_worker, "KafkaConsumer", FakeConsumer)
    monkeypatch.setattr(ingest_worker, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(ingest_worker, "check_retention", lambda settings, bootstrap: [])  # no broker to ask
    return IngestWorker(SETTINGS, "127.0.0.1:1", MemoryWindowStore())


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


def test_a_lost_membership_drops_the_speculative_state_without_raising(worker: IngestWorker) -> None:
    inner: MemoryWindowStore = worker.store.store  # type: ignore[attr-defined]
    consumer: FakeConsumer = worker.consumer  # type: ignore[assignment]

    def lose_and_regain() -> None:
        worker.committer.drain()
        stored = inner.load_partition("t.sales", 0)
        theirs = PartitionIngestor("t.sales", 0, Buckets(86_400), 7200_000, 56, stored)
        assert inner.commit(theirs.apply(LOG[stored.next_offset:stored.next_offset + 10]))  # the new owner goes on
        consumer.listener.on_partitions_lost({TP})  # kafka-python: the generation is lost
        consumer.listener.on_partitions_assigned([TP])

    consumer.before_poll[3] = lose_and_regain
    worker.run(until_idle=0.3)
    assert units(inner) == 40


def test_rebalance_callbacks_never_raise_and_a_real_failure_stops_the_worker(worker: IngestWorker) -> None:
    consumer: FakeConsumer = worker.consumer  # type: ignore[assignment]

    def redis_gone() -> None:
        def refused(*args: object) -> None:
            raise redis.ConnectionError("Connection refused")

        worker.store.store.load_partition = refused  # type: ignore[attr-defined]
        worker.store.store.commit = refused  # type: ignore[attr-defined]
        consumer.listener.on_partitions_revoked([TP])  # must not raise
        consumer.listener.on_partitions_assigned([TP])  # must not raise either

    consumer.before_poll[2] = redis_gone
    with pytest.raises(OutageError, match="Redis unreachable for 1s"):
        worker.run(until_idle=5)
