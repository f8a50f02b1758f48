"""Lost state, on both window stores: a partition's state that lost its offset or epoch marker is told apart from
a fresh one on load; a commit that finds Redis emptied says so (not "fenced"); records deleted before they were
ingested stop ingest unless gaps are allowed, and every gap is counted once in ``stats().gaps``.

The memory half runs with the unit tests; the Redis half (marked ``integration``) uses the session's servers."""

from __future__ import annotations

import orjson
import pytest

from tidecast.config import Settings
from tidecast.stream.adapters.redis_store import RedisWindowStore, delete_keys
from tidecast.stream.ingest import OffsetGap, PartitionIngestor, Record, StateLost
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore, WindowStore

DAILY = Buckets(86_400)
T0 = DAILY.start_ms(20_000)


def sale(offset: int, ts: int = T0, sku: str = "A") -> Record:
    doc = {"event_id": f"e{offset}", "type": "sale", "ts": ts, "sku": sku, "qty": 1, "price": 2.0}
    return Record(offset, orjson.dumps(doc))


def ingestor(store: WindowStore, topic: str = "sales", partition: int = 0, **kw: object) -> PartitionIngestor:
    return PartitionIngestor(topic, partition, DAILY, 0, 30, store.load_partition(topic, partition), **kw)  # type: ignore[arg-type]


def run(store: WindowStore, records: list[Record], topic: str = "sales", partition: int = 0) -> None:
    ing = ingestor(store, topic, partition)
    batch = ing.apply(records)
    assert store.commit(batch)
    ing.adopt(batch)


def forget(store: WindowStore, what: str, topic: str = "sales", partition: int = 0) -> None:
    """Lose one piece of a partition's state, the way Redis eviction or a hand-made DEL would."""
    if isinstance(store, RedisWindowStore):
        p = store.partition_prefix(store.prefix, partition)
        if what == "all":
            delete_keys(store.client, store.prefix)
        else:
            store.client.hdel(p + {"offset": "off", "epoch": "epoch"}[what], topic)
        return
    assert isinstance(store, MemoryWindowStore)
    if what == "all":
        store.__init__()  # type: ignore[misc]
    elif what == "offset":
        store.partitions[(topic, partition)].next_offset = None
    else:
        store.epochs.discard((topic, partition))


def test_a_fresh_partition_and_a_committed_one_are_not_lost(store: WindowStore) -> None:
    assert store.load_partition("sales", 0).lost is None
    run(store, [sale(0), sale(1)])
    state = store.load_partition("sales", 0)
    assert (state.next_offset, state.lost) == (2, None)


def test_a_missing_offset_beside_other_state_is_lost(store: WindowStore) -> None:
    run(store, [sale(0), sale(1)])
    forget(store, "offset")
    lost = store.load_partition("sales", 0).lost
    assert lost is not None and lost.startswith("sales:0: the stored state is incomplete: the offset is missing")
    assert "tidecast rebuild --yes" in lost and "delete the partition's keys" in lost


def test_a_missing_epoch_beside_windows_is_lost(store: WindowStore) -> None:
    run(store, [sale(0)])
    forget(store, "epoch")
    lost = store.load_partition("sales", 0).lost
    assert lost is not None and "the epoch marker is missing while windows exist" in lost


def test_another_topic_of_the_partition_accounts_for_its_windows(store: WindowStore) -> None:
    run(store, [sale(0)], topic="sales")
    state = store.load_partition("clicks", 0)  # nothing of clicks:0 yet, the windows are sales:0's
    assert (state.next_offset, state.lost) == (None, None)


def test_a_commit_on_an_emptied_store_says_redis_lost_its_data(store: WindowStore) -> None:
    ing = ingestor(store)
    first = ing.apply([sale(0)])
    assert store.commit(first)
    ing.adopt(first)
    forget(store, "all")
    with pytest.raises(StateLost, match=r"sales:0: Redis holds no state for this partition although this worker "
                                        r"committed up to offset 1"):
        store.commit(ing.apply([sale(1)]))
    assert store.stats().gaps == 1
    lost = store.load_partition("sales", 0).lost  # a restarted worker does not read it again from the start
    assert lost is not None and "the offset is missing while its gaps exist" in lost


def test_records_deleted_before_they_were_ingested_stop_the_partition(store: WindowStore) -> None:
    run(store, [sale(0), sale(1)])
    with pytest.raises(OffsetGap, match=r"sales:0 starts at offset 7, not at the stored offset 2: records 2 to 6 "
                                        r"\(5\) were deleted .*TIDECAST_ALLOW_GAPS=1") as caught:
        ingestor(store).apply([sale(7), sale(8)])
    assert (caught.value.gap, caught.value.records) == ("sales@2", 5)
    with pytest.raises(OffsetGap, match="restarts below the stored offset"):
        ingestor(store, allow_gaps=True).apply([sale(0)])


def test_allowed_gaps_are_counted_once_and_skipped_over(store: WindowStore) -> None:
    run(store, [sale(0), sale(1)])
    ing = ingestor(store, allow_gaps=True)
    batch = ing.apply([sale(7), sale(8)])
    assert batch.gap == (2, 7) and store.commit(batch)
    ing.adopt(batch)
    later = ing.apply([sale(9)])  # only the first records after the assignment are checked
    assert later.gap is None and store.commit(later)
    stats = store.stats()
    assert (stats.gaps, stats.counters["ingested"], stats.offsets["sales:0"]) == (1, 5, 10)
    assert store.load_partition("sales", 0).lost is None


def test_inspect_stats_reports_gaps(store: WindowStore) -> None:
    from tidecast.commands.inspect_cmd import stats_report

    assert stats_report(store, Settings())["gaps"] == 0
