"""Records Kafka deleted (retention) before the ingest worker read them, with a stand-in consumer that behaves like
kafka-python under the worker's reset policy "none": a position below the log start raises
``OffsetOutOfRangeError`` from ``poll`` (with ``{partition: offset}``), a partition without a position raises
``NoOffsetForPartitionError``. Without TIDECAST_ALLOW_GAPS the worker stops with the gap counted; with it, it
counts the gap and goes on from the log start. Never a silent skip."""

from __future__ import annotations

from typing import ClassVar

import orjson
import pytest
from kafka import TopicPartition
from kafka.errors import NoOffsetForPartitionError, OffsetOutOfRangeError
from stand_ins import AssignedConsumer, offline_worker

from tidecast.config import Settings
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.stream.ingest import PartitionIngestor, Record, RecordsDeleted, StateLost
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

TP = TopicPartition("t.sales", 0)
LOG = [Record(n, orjson.dumps({"event_id": f"e{n}", "type": "sale", "ts": 1_767_571_200_000 + n, "sku": "A",
                               "qty": 1})) for n in range(60)]


class RetainingConsumer(AssignedConsumer):
    """One partition of ``LOG`` whose oldest records can be deleted (``log_start``); 10 records a poll.
    ``before_poll[n]`` runs in poll n after the assignment, before the fetch (as retention would)."""

    TOPICS: ClassVar[dict[str, set[int]]] = {"t.sales": {0}}

    def __init__(self, **config: object) -> None:
        super().__init__(**config)
        self.log_start = 0
        self.position_of: int | None = None
        self.polls = 0
        self.paused: set[TopicPartition] = set()
        self.before_poll: dict[int, object] = {}

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        self.polls += 1
        action = self.before_poll.get(self.polls)
        if callable(action):
            action()
        silent = self.config["auto_offset_reset"] != "none"
        if self.position_of is None:
            if not silent:
                raise NoOffsetForPartitionError({TP})
            self.position_of = self.log_start
        if TP in self.paused:
            return {}
        if self.position_of < self.log_start:
            if not silent:
                raise OffsetOutOfRangeError({TP: self.position_of})
            self.position_of = self.log_start  # what "earliest" did: the records in between skipped silently
        records = LOG[self.position_of:self.position_of + 10]
        self.position_of += len(records)
        return {TP: records} if records else {}

    def seek(self, tp, offset: int) -> None:
        self.position_of = offset

    def seek_to_beginning(self, tp) -> None:
        self.position_of = self.log_start

    def beginning_offsets(self, tps) -> dict[TopicPartition, int]:
        return {tp: self.log_start for tp in tps}

    def pause(self, tp) -> None:
        self.paused.add(tp)

    def position(self, tp) -> int | None:
        return self.position_of




def make_worker(monkeypatch: pytest.MonkeyPatch, store: MemoryWindowStore, allow_gaps: bool = False,
                ) -> tuple[IngestWorker, RetainingConsumer]:
    settings = Settings(topic_prefix="t.", outage_timeout_seconds=1, allow_gaps=allow_gaps)
    worker = offline_worker(monkeypatch, RetainingConsumer, settings, store)
    return worker, worker.consumer  # type: ignore[return-value]


def stored(store: MemoryWindowStore, upto: int) -> None:
    """The store has ingested ``LOG[:upto]`` (a worker that ran before)."""
    ingestor = PartitionIngestor(TP.topic, 0, Buckets(86_400), 7_200_000, 56, store.load_partition(TP.topic, 0))
    assert store.commit(ingestor.apply(LOG[:upto]))


def ingested(store: MemoryWindowStore) -> int:
    return store.stats().counters["ingested"]


def delete_before(consumer: RetainingConsumer, offset: int):
    def delete() -> None:
        consumer.log_start = offset

    return delete


def test_the_worker_consumer_never_resets_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    _, consumer = make_worker(monkeypatch, MemoryWindowStore())
    assert consumer.config["auto_offset_reset"] == "none"


def test_records_deleted_under_a_running_worker_stop_it_with_the_gap_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryWindowStore()
    worker, consumer = make_worker(monkeypatch, store)
    consumer.before_poll[3] = delete_before(consumer, 30)  # after offsets 0-19 were read
    with pytest.raises(RecordsDeleted) as caught:
        worker.run(until_idle=0.3)
    message = str(caught.value)
    assert message.startswith("t.sales:0: Kafka deleted records 20 to 29 (10) before they were ingested: ingest "
                              "reached offset 20, the log now starts at 30")
    assert "tidecast rebuild --yes" in message and "TIDECAST_ALLOW_GAPS=1" in message
    assert store.gaps[0] == {"t.sales@20": 10}
    assert ingested(store) == 20 and store.load_partition(TP.topic, 0).next_offset == 20  # what was read is kept


def test_with_allow_gaps_the_deleted_records_are_counted_and_skipped(monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryWindowStore()
    worker, consumer = make_worker(monkeypatch, store, allow_gaps=True)
    consumer.before_poll[3] = delete_before(consumer, 30)
    worker.run(until_idle=0.3)
    assert store.gaps[0] == {"t.sales@20": 10}  # counted with the first batch after the gap, in its commit
    assert ingested(store) == 50 and store.load_partition(TP.topic, 0).next_offset == 60
    assert "Kafka deleted records 20 to 29 (10) before they were ingested; TIDECAST_ALLOW_GAPS" in caplog.text


def test_a_stored_offset_below_the_log_start_stops_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryWindowStore()
    stored(store, 5)
    worker, consumer = make_worker(monkeypatch, store)
    consumer.log_start = 25
    with pytest.raises(RecordsDeleted, match="ingest reached offset 5, the log now starts at 25"):
        worker.run(until_idle=0.3)
    assert store.gaps[0] == {"t.sales@5": 20} and ingested(store) == 5

    worker, consumer = make_worker(monkeypatch, store, allow_gaps=True)  # the operator accepts the gap
    consumer.log_start = 25
    worker.run(until_idle=0.3)
    assert store.gaps[0] == {"t.sales@5": 20} and ingested(store) == 40  # one gap, counted once


def test_a_log_start_that_moves_before_anything_was_read_is_no_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryWindowStore()
    worker, consumer = make_worker(monkeypatch, store)
    consumer.before_poll[1] = delete_before(consumer, 10)  # after the seek to the beginning, before the fetch
    worker.run(until_idle=0.3)
    assert store.gaps == {} and ingested(store) == 50  # as if the worker had started a moment later


def test_a_position_past_the_log_end_stops_even_with_allow_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryWindowStore()
    stored(store, 5)
    worker, consumer = make_worker(monkeypatch, store, allow_gaps=True)

    def recreated() -> None:  # the topic was deleted and created again, and Kafka said so for offset 5
        raise OffsetOutOfRangeError({TP: 5})

    consumer.before_poll[1] = recreated
    with pytest.raises(RecordsDeleted, match="past the log's end"):
        worker.run(until_idle=0.3)
    assert store.gaps[0] == {"t.sales@5": 0}


def test_lost_state_still_stops_with_the_stores_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lost partition is paused without a seek; kafka-python's "no offset" for it must not hide the reason."""
    store = MemoryWindowStore()
    stored(store, 5)
    store.partitions[(TP.topic, 0)].next_offset = None
    worker, _ = make_worker(monkeypatch, store)
    with pytest.raises(StateLost, match="the offset is missing"):
        worker.run(until_idle=0.3)
    assert ingested(store) == 5


def test_a_failed_assignment_reloads_instead_of_stopping_on_no_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryWindowStore()
    stored(store, 5)
    worker, _ = make_worker(monkeypatch, store)
    load = store.load_partition
    failures = [RuntimeError("Redis hiccup")]

    def flaky(topic: str, partition: int):
        if failures:
            raise failures.pop()
        return load(topic, partition)

    monkeypatch.setattr(store, "load_partition", flaky)
    worker.run(until_idle=0.3)
    assert ingested(store) == 60 and store.gaps == {}
