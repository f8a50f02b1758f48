"""Plan events: validation, the ahead bound, last write wins, store fallback, trimming, on both window stores."""

from __future__ import annotations

import orjson
import pytest

from tidecast.stream.events import InvalidEvent, Plan, validate
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.plan_history import resolve
from tidecast.stream.plans import PlanEntry, keep_latest
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import WindowStore

DAILY = Buckets(86_400)
D0 = 20_000
T0 = DAILY.start_ms(D0)
DAY = 86_400_000


def plan_doc(event_id: str = "p", ts: int = T0, for_ms: int = T0 + 3 * DAY, **fields: object) -> dict:
    return {"event_id": event_id, "type": "plan", "ts": ts, "for": for_ms, "store": "s1", **fields}


def plan(offset: int, **kw: object) -> Record:
    return Record(offset, orjson.dumps(plan_doc(event_id=f"p{offset}", **kw)))


def ingestor(store: WindowStore, partition: int = 0, retention: int = 30) -> PartitionIngestor:
    return PartitionIngestor("plans", partition, DAILY, 0, retention, store.load_partition("plans", partition))


def commit(store: WindowStore, ing: PartitionIngestor, records: list[Record]) -> None:
    batch = ing.apply(records)
    assert store.commit(batch)
    ing.adopt(batch)


# ---------------------------------------------------------------------------------------------- validation
def test_a_series_plan_and_a_store_plan() -> None:
    series = validate(orjson.dumps(plan_doc(sku="A", promo=True, price=2.5, open=True, event="Easter")))
    assert series == Plan("p", T0, "s1:A", T0 + 3 * DAY, (True, 2.5, True, "Easter"))
    store = validate(orjson.dumps(plan_doc(event=None)))
    assert store.target == "s1" and store.values == (None, None, None, "")  # event null: known, none
    assert validate(orjson.dumps({**plan_doc(), "store": None})).target == "all"  # the default store


@pytest.mark.parametrize(("change", "reason"), [
    ({"promo": "yes"}, "field 'promo' must be true or false, got a string"),
    ({"open": 1}, "field 'open' must be true or false, got a number"),
    ({"price": -1}, "field 'price' must be within 0 to 10000000 (TIDECAST_MAX_PRICE), got -1"),
    ({"price": "cheap"}, "field 'price' must be a finite number, got a string"),
    ({"event": 3}, "field 'event' must be a string or null, got a number"),
    ({"event": ""}, "field 'event' must be 1 to 200 printable characters or null, got ''"),
    ({"for": "2026-01-05T00:00:00"}, "field 'for' has no UTC offset: '2026-01-05T00:00:00'"),
    ({"store": "a:b"}, "field 'store' must not contain ':', got 'a:b'"),
    ({"sku": 7}, "field 'sku' must be a string, got a number"),
])
def test_bad_plans_are_rejected_with_a_reason(change: dict, reason: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        validate(orjson.dumps({**plan_doc(), **change}))
    assert str(exc.value) == reason


def test_a_missing_for_is_named() -> None:
    doc = plan_doc()
    del doc["for"]
    with pytest.raises(InvalidEvent, match="missing field 'for'"):
        validate(orjson.dumps(doc))


def test_plans_must_be_ahead_of_their_issue_time_within_the_retention(store: WindowStore) -> None:
    batch = ingestor(store, retention=5).apply([
        plan(0, for_ms=T0 + 5),  # the bucket it was issued in
        plan(1, for_ms=T0 + 6 * DAY),  # beyond 5 buckets ahead
        plan(2, for_ms=T0 + 5 * DAY),  # the last allowed
    ])
    assert [r.offset for r in batch.rejects] == [0, 1]
    assert batch.rejects[0].reason.startswith("field 'for' must be 1 to 5 buckets after the bucket of 'ts'")
    assert batch.counts.invalid == 2 and batch.counts.ingested == 1
    assert list(batch.plans) == [(D0 + 5, "s1")]


# ------------------------------------------------------------------------------------ last write wins
def test_last_write_wins_by_issue_time_then_offset(store: WindowStore) -> None:
    ing = ingestor(store)
    commit(store, ing, [plan(0, ts=T0 + 10, promo=True), plan(1, ts=T0 + 5, promo=False)])  # issued earlier: loses
    assert store.read_plans(D0 + 3, D0 + 3)[D0 + 3]["s1"].values[0] is True
    commit(store, ing, [plan(2, ts=T0 + 10, price=3.0)])  # same time, later offset: wins, replaces the whole plan
    assert store.read_plans(D0, D0 + 10) == {D0 + 3: {"s1": PlanEntry(T0 + 10, 2, (None, 3.0, None, None))}}
    commit(store, ing, [plan(3, ts=T0 + 9, promo=True)])  # a later batch with an older plan changes nothing
    assert store.read_plans(D0 + 3, D0 + 3)[D0 + 3]["s1"].offset == 2


def test_a_replayed_batch_changes_nothing(store: WindowStore) -> None:
    ing = ingestor(store)
    batch = ing.apply([plan(0, promo=True), plan(1, ts=T0 + 1, promo=False, for_ms=T0 + 4 * DAY)])
    assert store.commit(batch)
    before = store.read_plans(D0, D0 + 10)
    assert not store.commit(batch)  # fenced: the offset moved on
    assert store.read_plans(D0, D0 + 10) == before
    assert store.stats().counters["ingested"] == 2


def test_the_latest_plan_wins_across_partitions(store: WindowStore) -> None:
    commit(store, ingestor(store, 0), [plan(0, ts=T0 + 7, promo=True)])
    commit(store, ingestor(store, 3), [plan(0, ts=T0 + 8, promo=False)])  # same target keyed elsewhere
    assert store.read_plans(D0 + 3, D0 + 3)[D0 + 3]["s1"].values[0] is False


def test_keep_latest_breaks_ties_by_partition() -> None:
    plans: dict = {}
    keep_latest(plans, "k", PlanEntry(1, 1, (True, None, None, None), partition=2))
    keep_latest(plans, "k", PlanEntry(1, 1, (False, None, None, None), partition=1))
    assert plans["k"].values[0] is True


# ------------------------------------------------------------------------------------------- trimming
def test_plans_are_trimmed_with_the_windows(store: WindowStore) -> None:
    ing = ingestor(store, retention=3)
    commit(store, ing, [plan(0, promo=True, for_ms=T0 + DAY)])
    assert D0 + 1 in store.read_plans(D0, D0 + 9)
    commit(store, ing, [plan(1, ts=T0 + 5 * DAY, promo=True, for_ms=T0 + 6 * DAY)])  # watermark in D0+5: trims < D0+2
    assert sorted(store.read_plans(D0 - 9, D0 + 9)) == [D0 + 6]


def test_a_sales_batch_trims_the_plans_of_its_partition(store: WindowStore) -> None:
    commit(store, ingestor(store, 4, retention=3), [plan(0, promo=True, for_ms=T0 + DAY)])
    sales = PartitionIngestor("sales", 4, DAILY, 0, 3, store.load_partition("sales", 4))
    sale = {"event_id": "s", "type": "sale", "ts": T0 + 9 * DAY, "sku": "A", "store": "s1", "qty": 1}
    commit(store, sales, [Record(0, orjson.dumps(sale))])
    assert store.read_plans(D0 - 9, D0 + 9) == {}


# ------------------------------------------------------------------------------------------- fallback
def test_series_plan_else_store_plan_else_none() -> None:
    plans = {D0: {"s1": PlanEntry(1, 0, (True, None, False, None)), "s1:B": PlanEntry(1, 1, (None, 2.0, None, ""))},
             D0 + 1: {"s2": PlanEntry(1, 2, (None, None, None, "Xmas"))}}
    values, hashes = resolve(plans, ["s1:A", "s1:B", "s2:A", "s3:A"], D0, 2)
    assert values[0, 0].tolist() == [1, 1, 0, 0, 0, 1, 0, 0]  # the store's plan
    assert values[1, 0].tolist() == [0, 0, 2, 1, 0, 0, 0, 1]  # its own, not the store's: promo unknown
    assert values[2, 1].tolist() == [0, 0, 0, 0, 0, 0, 1, 1] and not values[2, 0].any()
    assert not values[3].any() and hashes[3] is None
    assert len({hashes[0], hashes[1], hashes[2]}) == 3 and all(len(h or "") == 12 for h in hashes[:3])


def test_the_synthetic_promotions_can_be_announced_ahead(store: WindowStore) -> None:
    from tidecast.producers.synthetic import SyntheticConfig, planned_promotions

    config = SyntheticConfig(series=20, days=60, seed=3)
    docs = planned_promotions(config, ahead_days=7)
    ing = PartitionIngestor("plans", 0, DAILY, 7_200_000, 56, store.load_partition("plans", 0))
    batch = ing.apply([Record(n, orjson.dumps(doc)) for n, doc in enumerate(docs)])
    assert docs and batch.counts.ingested == len(docs) and not batch.rejects
    assert all(entry.values == (True, None, None, None) for entry in batch.plans.values())
