"""One suite, two window stores: the in-memory one and Redis must behave the same.

The memory half runs with the unit tests; the Redis half (marked ``integration``) starts the embedded
servers of the test session (``tests/conftest.py``)."""

from __future__ import annotations

import orjson
import pytest

from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import WindowStore

DAILY = Buckets(86_400)
D0 = 20_000  # some day
T0 = DAILY.start_ms(D0)
DAY = 86_400_000


def sale(event_id: str, ts: int, sku: str = "A", qty: float = 1, price: float | None = 2.5) -> Record:
    doc = {"event_id": event_id, "type": "sale", "ts": ts, "sku": sku, "qty": qty, "price": price}
    return Record(int(event_id[1:]), orjson.dumps(doc))


def run(store: WindowStore, partition: int, records: list[Record], lateness_ms: int = 0, retention: int = 30) -> None:
    ing = PartitionIngestor("sales", partition, DAILY, lateness_ms, retention, store.load_partition("sales", partition))
    batch = ing.apply(records)
    assert store.commit(batch)
    ing.adopt(batch)


def test_commit_then_read_back(store: WindowStore) -> None:
    run(store, 0, [sale("e0", T0, qty=2, price=0.1), sale("e1", T0 + 1, qty=1, price=0.2), sale("e2", T0 + DAY)])
    run(store, 5, [sale("e0", T0, sku="B", qty=-2)])
    assert store.series_window("all:A") == [
        (D0, {"units": 3, "orders": 2, "revenue": 0.2 + 0.2, "returns": 0, "views": 0, "add_to_cart": 0,
              "promo_orders": 0}),
        (D0 + 1, {"units": 1, "orders": 1, "revenue": 2.5, "returns": 0, "views": 0, "add_to_cart": 0,
                  "promo_orders": 0}),
    ]
    assert store.read_bucket(D0) == {"all:A": [3, 2, pytest.approx(0.4), 0, 0, 0, 0], "all:B": [0, 0, 0, 2, 0, 0, 0]}
    assert store.series_window("all:nothing") == []


def test_a_stale_batch_is_fenced(store: WindowStore) -> None:
    ing = PartitionIngestor("sales", 1, DAILY, 0, 30, store.load_partition("sales", 1))
    first = ing.apply([sale("e0", T0)])
    stale_twin = ing.apply([sale("e0", T0)])
    assert store.commit(first)
    assert not store.commit(stale_twin)
    assert store.read_bucket(D0)["all:A"][0] == 1


def test_state_survives_a_reload(store: WindowStore) -> None:
    run(store, 2, [sale("e0", T0), sale("e1", T0 + 5)], lateness_ms=DAY)
    state = store.load_partition("sales", 2)
    assert state.next_offset == 2 and state.max_ts_ms == T0 + 5 and state.seen == {D0: {"e0", "e1"}}
    run(store, 2, [sale("e2", T0 + 6), Record(3, sale("e0", T0 + 7).value)], lateness_ms=DAY)
    assert store.read_bucket(D0)["all:A"][0] == 3
    assert store.stats().counters["duplicates"] == 1


def test_retention_and_closed_dedup_sets_are_trimmed(store: WindowStore) -> None:
    run(store, 3, [sale("e0", T0), sale("e1", T0 + DAY)], retention=2)
    run(store, 3, [sale("e2", T0 + 3 * DAY)], retention=2)
    assert store.read_bucket(D0) == {}
    assert [b for b, _ in store.series_window("all:A")] == [D0 + 1, D0 + 3]
    assert set(store.load_partition("sales", 3).seen) == {D0 + 3}


def test_stats_sum_over_partitions(store: WindowStore) -> None:
    run(store, 0, [sale("e0", T0), Record(1, b"{")])
    run(store, 7, [sale("e0", T0, sku="Z")])
    stats = store.stats()
    assert stats.counters == {"ingested": 2, "duplicates": 0, "late": 0, "invalid": 1, "dlq": 1}
    assert stats.offsets == {"sales:0": 2, "sales:7": 1}
    assert stats.max_ts_ms == {"sales:0": T0, "sales:7": T0}
