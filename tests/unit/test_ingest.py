"""The per-partition ingest state machine: dedup, lateness, watermarks, retention, all-or-nothing batches."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tidecast.stream.ingest import LATE, PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

H = 3_600_000  # one hour in ms
HOURLY = Buckets(3600)
T0 = HOURLY.start_ms(1000)  # the start of some hourly bucket "b0"
B0 = HOURLY.index(T0)


def sale(event_id: str, ts: int, sku: str = "A", qty: float = 1, price: float | None = 2.0) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "sale", "ts": ts, "sku": sku, "qty": qty, "price": price})


def click(event_id: str, ts: int, action: str = "view", sku: str = "A") -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "click", "ts": ts, "sku": sku, "action": action})


def records(*values: bytes, start: int = 0) -> list[Record]:
    return [Record(start + i, v) for i, v in enumerate(values)]


def ingestor(lateness_ms: int = 0, retention: int = 48) -> PartitionIngestor:
    return PartitionIngestor("sales", 0, HOURLY, lateness_ms, retention)


def test_windows_sum_per_series_and_bucket() -> None:
    ing = ingestor(lateness_ms=2 * H)
    batch = ing.apply(records(
        sale("a", T0, qty=2, price=1.5), sale("b", T0 + 10, qty=1), sale("c", T0 + 20, qty=-1),
        click("d", T0 + 30), click("e", T0 + 40, "add_to_cart"), sale("f", T0 + H, qty=4, price=None),
    ))
    assert batch.delta.rows == {
        (B0, "all:A"): [3, 2, 5.0, 1, 1, 1, 0],
        (B0 + 1, "all:A"): [4, 1, 0, 0, 0, 0, 0],
    }
    assert batch.counts.ingested == 6 and batch.next_offset == 6 and batch.expected_offset is None


def test_duplicates_within_a_batch_and_across_batches_are_counted_not_added() -> None:
    ing = ingestor(lateness_ms=2 * H)
    first = ing.apply(records(sale("a", T0), sale("a", T0), sale("b", T0)))
    assert (first.counts.ingested, first.counts.duplicates) == (2, 1)
    ing.adopt(first)
    second = ing.apply(records(sale("a", T0), sale("c", T0 + 5), start=3))
    assert (second.counts.ingested, second.counts.duplicates) == (1, 1)
    assert second.delta.rows[(B0, "all:A")][0] == 1


def test_apply_changes_nothing_until_adopted() -> None:
    ing = ingestor()
    batch = ing.apply(records(sale("a", T0)))
    assert ing.next_offset is None and ing.max_ts_ms is None and ing.seen == {}
    again = ing.apply(records(sale("a", T0)))  # a replay of an uncommitted batch classifies the same way
    assert again.counts.ingested == 1 and again.delta.rows == batch.delta.rows


def test_lateness_timeline() -> None:
    # lateness 2h, hourly buckets
    #   b0              b0+1             b0+2             b0+3
    #   [---------------)[---------------)[---------------)[-----
    #        ^ e1 (b0)                        ^ e2 at b0+2:30 -> watermark b0+0:30: b0 still open
    #                                                          ^ e4 at b0+3:00 -> watermark b0+1:00: b0 closed
    ing = ingestor(lateness_ms=2 * H)
    batch = ing.apply(records(
        sale("e1", T0 + H // 4),
        sale("e2", T0 + 2 * H + H // 2),
        sale("e3", T0 + H - 1),  # b0 is still open: accepted
        sale("e4", T0 + 3 * H),
        sale("e5", T0 + H - 1),  # b0 closed now: late
        sale("e6", T0 + H),  # b0+1 is open
    ))
    assert batch.counts.ingested == 5 and batch.counts.late == 1
    assert [r.offset for r in batch.rejects] == [4] and batch.rejects[0].reason == LATE
    assert ing.apply(records()).max_ts_ms is None  # state untouched before adopt
    ing.adopt(batch)
    assert ing.max_ts_ms == T0 + 3 * H and ing.watermark_ms == T0 + H


def test_closed_buckets_forget_their_event_ids() -> None:
    ing = ingestor(lateness_ms=0)
    first = ing.apply(records(sale("a", T0)))
    ing.adopt(first)
    assert set(ing.seen) == {B0}
    second = ing.apply(records(sale("b", T0 + H), start=1))  # watermark reaches the end of b0
    assert second.forget_seen == [B0]
    ing.adopt(second)
    assert set(ing.seen) == {B0 + 1}


def test_retention_trims_behind_the_watermark() -> None:
    ing = ingestor(lateness_ms=0, retention=3)
    batch = ing.apply(records(sale("a", T0 + 10 * H)))
    assert batch.trim_before == B0 + 10 - 3


def test_invalid_messages_are_rejected_with_their_offset_and_reason() -> None:
    ing = ingestor()
    batch = ing.apply([Record(40, b"{bad"), Record(41, None), Record(42, sale("a", T0))])
    assert [(r.offset, r.reason[:14]) for r in batch.rejects] == [(40, "not valid JSON"), (41, "empty message")]
    assert batch.counts.invalid == 2 and batch.counts.dlq == 2 and batch.next_offset == 43


event_strategy = st.tuples(
    st.sampled_from(["sale", "click", "bad"]),
    st.integers(0, 40),  # event id, small so duplicates happen
    st.integers(0, 6 * H),  # event time offset
    st.sampled_from(["A", "B", "C"]),
    st.integers(-3, 5).filter(bool),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event_strategy, max_size=120), st.integers(1, 40), st.integers(0, 3 * H))
def test_batching_does_not_change_the_outcome(events: list, batch_size: int, lateness: int) -> None:
    values = []
    for kind, n, offset, sku, qty in events:
        if kind == "bad":
            values.append(b"{")
        elif kind == "sale":
            values.append(sale(f"e{n}", T0 + offset, sku, qty))
        else:
            values.append(click(f"e{n}", T0 + offset, "view", sku))
    recs = records(*values)

    def run(size: int) -> tuple[dict, dict]:
        store = MemoryWindowStore()
        ing = PartitionIngestor("sales", 0, HOURLY, lateness, 1000, store.load_partition("sales", 0))
        for start in range(0, len(recs), size):
            batch = ing.apply(recs[start:start + size])
            assert store.commit(batch)
            ing.adopt(batch)
        windows = {(p, b, s): row for p, bs in store.windows.items() for b, by in bs.items() for s, row in by.items()}
        return windows, store.stats().counters

    one_by_one, all_at_once = run(1), run(max(len(recs), 1))
    assert run(batch_size) == one_by_one == all_at_once
    counters = one_by_one[1]
    assert counters["ingested"] + counters["duplicates"] + counters["late"] + counters["invalid"] == len(recs)


def test_an_idle_partition_follows_the_others() -> None:
    # partition 0 saw b0 only; the others are at b0+5. After the idle timeout the worker advances it:
    #   b0        b0+1  ...  b0+5
    #   [-e1-)[-------)      [---- max event time of the others
    ing = ingestor(lateness_ms=0)
    first = ing.apply(records(sale("e1", T0)))
    ing.adopt(first)
    moved = ing.advance(T0 + 5 * H, position=99)
    assert moved is not None and moved.expected_offset == moved.next_offset == 1
    assert moved.max_ts_ms == T0 + 5 * H and moved.forget_seen == [B0] and not moved.delta.rows
    ing.adopt(moved)
    assert ing.apply(records(sale("e2", T0 + H), start=1)).counts.late == 1  # its bucket closed meanwhile
    assert ing.advance(T0, position=1) is None  # never moves backwards


def test_a_never_used_partition_advances_from_the_consumer_position() -> None:
    moved = ingestor().advance(T0, position=0)
    assert moved is not None and moved.expected_offset is None and moved.next_offset == 0
