"""The idle-partition advance (TIDECAST_IDLE_TIMEOUT) never moves a partition that still has a backlog: catching
up, the consumer returns partitions' records in turns, and a partition left waiting past the idle timeout was
moved to the others' event time, so its whole backlog went to the DLQ as ``late`` (the chaos run's rebuild).
Only a partition whose position reached the high watermark of its last fetch is idle."""

from __future__ import annotations

import orjson
import pytest
from kafka import TopicPartition
from stand_ins import offline_worker

from tidecast.config import Settings
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

DAY_MS = 86_400_000
START = 1_767_571_200_000  # 2026-01-05T00:00Z
BEHIND, AHEAD = TopicPartition("t.sales", 0), TopicPartition("t.sales", 1)


class Lagging:
    """A consumer stand-in whose partitions report a position and a high watermark."""

    def __init__(self, **config: object) -> None:
        self.positions = {BEHIND: 10, AHEAD: 50}
        self.highwaters: dict[TopicPartition, int | None] = {BEHIND: 500, AHEAD: 50}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters[tp]

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def close(self, autocommit: bool = False) -> None:
        pass



def sale(n: int, ts: int) -> Record:
    return Record(n, orjson.dumps({"event_id": f"e{n}", "type": "sale", "ts": ts, "sku": "A", "qty": 1}))


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> IngestWorker:
    store = MemoryWindowStore()
    worker = offline_worker(monkeypatch, Lagging, Settings(topic_prefix="t.", idle_timeout_seconds=5), store)
    for tp, days in ((BEHIND, 1), (AHEAD, 20)):  # BEHIND has read day 1 of its backlog, AHEAD is at day 20
        ingestor = PartitionIngestor(tp.topic, tp.partition, Buckets(86_400), 7_200_000, 56,
                                     store.load_partition(tp.topic, tp.partition))
        batch = ingestor.apply([sale(0, START + days * DAY_MS)])
        assert store.commit(batch)
        ingestor.adopt(batch)
        worker.ingestors[tp] = ingestor
        worker.last_record[tp] = 0.0  # no record for a long time
    return worker


def watermark_day(worker: IngestWorker, tp: TopicPartition) -> float:
    return (worker.ingestors[tp].max_ts_ms - START) / DAY_MS


def test_a_partition_with_a_backlog_is_not_idle(worker: IngestWorker) -> None:
    worker._advance_idle(now=1_000.0)
    worker.committer.drain()
    assert watermark_day(worker, BEHIND) == 1  # its days 2..20 are still to come: not late


def test_a_caught_up_partition_follows_the_others(worker: IngestWorker) -> None:
    worker.consumer.positions[BEHIND] = 500  # read all it holds
    worker._advance_idle(now=1_000.0)
    worker.committer.drain()
    assert watermark_day(worker, BEHIND) == 20


def test_a_partition_no_fetch_has_answered_for_is_not_idle(worker: IngestWorker) -> None:
    worker.consumer.highwaters[BEHIND] = None
    worker._advance_idle(now=1_000.0)
    assert watermark_day(worker, BEHIND) == 1
