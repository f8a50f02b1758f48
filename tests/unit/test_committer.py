"""The committer thread: batches commit in order, DLQ acknowledgements come first, a stale batch is fenced
and nothing is committed after a failure (the next batch would skip data)."""

from __future__ import annotations

import orjson
import pytest

from tidecast.consumers.committer import Committer, Fenced
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore


def sale(offset: int, event_id: str) -> Record:
    doc = {"event_id": event_id, "type": "sale", "ts": 1_767_571_200_000 + offset, "sku": "A", "qty": 1}
    return Record(offset, orjson.dumps(doc))


def ingestor(store: MemoryWindowStore) -> PartitionIngestor:
    return PartitionIngestor("sales", 0, Buckets(86_400), 0, 30, store.load_partition("sales", 0))


class Ack:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def get(self, timeout: float | None = None) -> object:
        self.log.append(self.name)
        return None


def test_batches_commit_in_order_after_their_dlq_acks() -> None:
    store, log = MemoryWindowStore(), []
    committer = Committer(store, on_commit=lambda batch, _: log.append(f"commit {batch.next_offset}"))
    ing = ingestor(store)
    for n in range(3):
        batch = ing.apply([sale(n, f"e{n}")])
        ing.adopt(batch)
        committer.submit(batch, [Ack(log, f"dlq {n}")])
    committer.close()
    assert log == ["dlq 0", "commit 1", "dlq 1", "commit 2", "dlq 2", "commit 3"]
    assert store.read_bucket(Buckets(86_400).index(1_767_571_200_000))["all:A"][0] == 3


def test_a_stale_batch_is_fenced_and_stops_every_later_commit() -> None:
    store = MemoryWindowStore()
    mine, theirs = ingestor(store), ingestor(store)  # two consumers that both think they own partition 0
    taken = theirs.apply([sale(0, "e0")])
    assert store.commit(taken)  # the other consumer got there first
    committer = Committer(store)
    stale = mine.apply([sale(0, "e0")])
    mine.adopt(stale)
    committer.submit(stale)
    with pytest.raises(Fenced, match="sales:0"):
        committer.drain()
    later = mine.apply([sale(1, "e1")])
    with pytest.raises(Fenced):
        committer.submit(later)
    with pytest.raises(Fenced):
        committer.close()
    assert store.load_partition("sales", 0).next_offset == 1  # only the other consumer's batch landed
