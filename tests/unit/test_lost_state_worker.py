"""The ingest worker's assignment path on lost state and gaps, with a stand-in consumer (no servers): lost state
pauses the partition and stops the loop with the store's message; a first record past the stored offset (Kafka
deleted records before they were ingested) stops with a gap, or is counted and skipped with TIDECAST_ALLOW_GAPS;
the startup retention check warns when the input topics keep less than the windows span."""

from __future__ import annotations

import logging

import orjson
import pytest
from kafka import TopicPartition

from tidecast.config import Settings
from tidecast.consumers import ingest_worker
from tidecast.consumers.committer import Committer
from tidecast.consumers.ingest_worker import IngestProgress, IngestWorker, check_retention
from tidecast.stream.adapters.kafka_clients import topic_retention_ms
from tidecast.stream.events import Bounds
from tidecast.stream.ingest import OffsetGap, PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

T0 = Buckets(86_400).start_ms(20_000)
TP = TopicPartition("tidecast.sales", 0)


class Consumer:
    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int | str] = {}
        self.paused: list[TopicPartition] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seeks[tp] = "beginning"

    def pause(self, tp: TopicPartition) -> None:
        self.paused.append(tp)


def sale(offset: int) -> Record:
    doc = {"event_id": f"e{offset}", "type": "sale", "ts": T0, "sku": "A", "qty": 1}
    return Record(offset, orjson.dumps(doc))


def worker(store: MemoryWindowStore, settings: Settings | None = None) -> IngestWorker:
    """An IngestWorker on ``store`` with a stand-in consumer (its constructor would connect to Kafka)."""
    w = IngestWorker.__new__(IngestWorker)
    w.settings = settings or Settings()
    w.store, w.buckets, w.bounds = store, Buckets(w.settings.bucket_seconds), Bounds(1e6, 1e7)
    w.progress, w.ingestors, w.committed, w.last_record = IngestProgress(), {}, {}, {}
    w.consumer, w.committer = Consumer(), Committer(store)  # type: ignore[assignment]
    w.on_progress, w._stop, w._failure = None, False, None
    return w


def ingested(store: MemoryWindowStore, records: list[Record]) -> None:
    ing = PartitionIngestor(TP.topic, 0, Buckets(86_400), 7_200_000, 56, store.load_partition(TP.topic, 0))
    assert store.commit(ing.apply(records))


def test_lost_state_pauses_the_partition_and_stops_with_the_stores_message() -> None:
    store = MemoryWindowStore()
    ingested(store, [sale(0), sale(1)])
    store.partitions[(TP.topic, 0)].next_offset = None  # the offset is gone; counters, windows, epoch are not
    w = worker(store)
    w._assigned([TP])
    assert w._stop and TP not in w.ingestors and w.consumer.paused == [TP]  # type: ignore[attr-defined]
    assert TP not in w.consumer.seeks  # type: ignore[attr-defined]  # no re-read from the beginning
    assert w._failure is not None and "the offset is missing" in str(w._failure)
    assert store.stats().gaps == 1
    w.committer.close()


def test_a_first_record_past_the_stored_offset_stops_with_a_gap() -> None:
    store = MemoryWindowStore()
    ingested(store, [sale(0), sale(1)])
    w = worker(store)
    w._assigned([TP])
    assert w.consumer.seeks == {TP: 2}  # type: ignore[attr-defined]
    with pytest.raises(OffsetGap, match="starts at offset 500, not at the stored offset 2"):
        w._ingest(TP, [sale(500), sale(501)])
    assert store.stats().gaps == 1 and store.stats().counters["ingested"] == 2
    w.committer.close()


def test_allowed_gaps_are_counted_and_skipped() -> None:
    store = MemoryWindowStore()
    ingested(store, [sale(0), sale(1)])
    w = worker(store, Settings(allow_gaps=True))
    w._assigned([TP])
    w._ingest(TP, [sale(500), sale(501)])
    w.committer.drain()
    stats = store.stats()
    assert (stats.gaps, stats.counters["ingested"], stats.offsets[f"{TP.topic}:0"]) == (1, 4, 502)
    w.committer.close()


def test_allow_gaps_is_read_from_the_environment() -> None:
    assert Settings.from_env({"TIDECAST_ALLOW_GAPS": "1"}).allow_gaps
    assert not Settings.from_env({}).allow_gaps


def test_created_topics_keep_twice_the_windows_span_and_at_least_a_week() -> None:
    assert topic_retention_ms(Settings(retention=56, bucket_seconds=86_400)) == 2 * 56 * 86_400_000
    assert topic_retention_ms(Settings(retention=24, bucket_seconds=3_600)) == 7 * 86_400_000


def test_the_startup_check_warns_about_short_retention(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings()
    week = 7 * 86_400_000
    monkeypatch.setattr(ingest_worker, "topic_retentions",
                        lambda bootstrap, topics, s: {topics[0]: week, topics[1]: None})
    with caplog.at_level(logging.INFO, logger=ingest_worker.__name__):
        warnings = check_retention(settings, "127.0.0.1:1")
    assert warnings == [f"{settings.topics.inputs[0]} keeps records 1w, less than the Redis windows span "
                        f"(56 buckets of 1d)"]
    assert "reports no retention.ms" in caplog.text

    monkeypatch.setattr(ingest_worker, "topic_retentions", lambda bootstrap, topics, s: {t: -1 for t in topics})
    assert check_retention(settings, "127.0.0.1:1") == []  # unlimited

    def broken(*args: object) -> dict:
        raise OSError("no DescribeConfigs")

    monkeypatch.setattr(ingest_worker, "topic_retentions", broken)
    assert check_retention(settings, "127.0.0.1:1") == []  # advice only: never stops ingest
