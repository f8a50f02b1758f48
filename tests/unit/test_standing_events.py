"""Policy and inventory events: validation (agreeing with the schema), last write wins on both window stores,
never trimmed, and what the forecaster makes of them: each series' policy and order quantity in its target."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from tidecast.models.replenishment import Policy
from tidecast.stream.events import InvalidEvent, Standing, validate
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.standing import StandingEntry
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore, WindowStore

DAILY = Buckets(86_400)
D0 = 20_000
T0 = DAILY.start_ms(D0)
SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs/schemas/event.schema.json").read_text()))


def policy(event_id: str = "o", ts: int = T0, **fields: object) -> dict:
    return {"event_id": event_id, "type": "policy", "ts": ts, "store": "s1", **fields}


def inventory(event_id: str = "i", ts: int = T0, **fields: object) -> dict:
    return {"event_id": event_id, "type": "inventory", "ts": ts, "store": "s1", "sku": "A", "on_hand": 4, **fields}


def commit(store: WindowStore, ing: PartitionIngestor, docs: list[dict], first: int = 0) -> None:
    batch = ing.apply([Record(first + n, orjson.dumps(doc)) for n, doc in enumerate(docs)])
    assert not batch.rejects, batch.rejects
    assert store.commit(batch)
    ing.adopt(batch)


def ingestor(store: WindowStore, partition: int = 0, retention: int = 30) -> PartitionIngestor:
    return PartitionIngestor("plans", partition, DAILY, 0, retention, store.load_partition("plans", partition))


# ---------------------------------------------------------------------------------------------- validation
def test_a_store_policy_a_series_policy_and_an_inventory() -> None:
    assert validate(orjson.dumps(policy(lead_time=3, review=2, service_level=0.9))) == Standing(
        "o", T0, "policy", "s1", (3, 2, 0.9))
    assert validate(orjson.dumps(policy(sku="A", review=7))).values == (None, 7, None)
    assert validate(orjson.dumps(policy())).values == (None, None, None)  # clears the overrides
    assert validate(orjson.dumps(inventory(on_order=2.5))) == Standing("i", T0, "inventory", "s1:A", (4, 2.5))
    # null is absent (as people write it), and 4.0 is the integer 4 (as JSON Schema reads it)
    assert validate(orjson.dumps(policy(lead_time=4.0, review=None, service_level=None))).values == (4, None, None)
    assert validate(orjson.dumps(inventory(on_order=None))).values == (4, 0)
    for doc in (policy(lead_time=3), policy(sku="A", review=7), inventory(on_order=2.5), policy(lead_time=4.0,
                review=None, service_level=None), inventory(on_order=None)):
        SCHEMA.validate(doc)


@pytest.mark.parametrize(("doc", "reason"), [
    (policy(lead_time=-1), "field 'lead_time' must be a whole number of buckets from 0 to 10000, got -1"),
    (policy(review=0), "field 'review' must be a whole number of buckets from 1 to 10000, got 0"),
    (policy(review=1.5), "field 'review' must be a whole number of buckets from 1 to 10000, got 1.5"),
    (policy(service_level=0.999), "field 'service_level' must be within 0.5 to 0.99, got 0.999"),
    (policy(service_level="high"), "field 'service_level' must be a finite number, got a string"),
    (inventory(sku=None), "missing field 'sku' (an inventory is a series' stock position)"),
    (inventory(on_hand=None), "missing field 'on_hand'"),
    (inventory(on_order=-1), "field 'on_order' must be within 0 to 1000000 (TIDECAST_MAX_QTY), got -1"),
    (inventory(on_hand=2e6), "field 'on_hand' must be within -1000000 to 1000000 (TIDECAST_MAX_QTY), got 2000000.0"),
    ({**policy(sku="A"), "type": ["policy"]}, "field 'type' must be 'sale', 'click', 'plan', 'policy' or 'inventory', "
                                       "got ['policy']"),
])
def test_bad_policies_and_inventories_are_rejected_with_a_reason_the_schema_agrees_with(doc: dict,
                                                                                     reason: str) -> None:
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(InvalidEvent) as exc:
        validate(orjson.dumps(doc))
    assert str(exc.value) == reason
    assert not SCHEMA.is_valid(doc)


# ------------------------------------------------------------------------------------ last write wins
def test_the_latest_of_each_kind_and_target_wins_and_is_never_trimmed(store: WindowStore) -> None:
    ing = ingestor(store, retention=3)
    commit(store, ing, [policy("o1", ts=T0 + 10, service_level=0.9), policy("o2", ts=T0 + 5, service_level=0.8),
                        inventory("i1", on_hand=4), inventory("i2", on_hand=6)])
    assert store.read_standing("policy") == {"s1": StandingEntry(T0 + 10, 0, (None, None, 0.9))}
    assert store.read_standing("inventory")["s1:A"].values == (6, 0)  # same time, later offset
    # days later (the windows of D0 trimmed), on another partition: an older policy loses, a newer inventory wins
    commit(store, ingestor(store, 2, retention=3),
           [policy("o3", ts=T0 + 9, lead_time=1), inventory("i3", ts=T0 + 9 * 86_400_000, on_hand=1)])
    assert store.read_standing("policy")["s1"].values == (None, None, 0.9)
    assert store.read_standing("inventory")["s1:A"].values == (1, 0)
    assert store.read_standing("inventory")["s1:A"].partition == 2
    commit(store, ing, [inventory("i4", ts=T0 + 10 * 86_400_000, sku="B")], first=4)  # trims partition 0's D0
    assert store.read_standing("policy")["s1"].values == (None, None, 0.9)


def test_an_old_stock_count_is_not_late(store: WindowStore) -> None:
    ing = ingestor(store)
    day = 86_400_000
    commit(store, ing, [policy("o1", ts=T0 + 3 * day + 9 * 3_600_000, review=2)])  # the watermark: day 3, 09:00
    batch = ing.apply([Record(1, orjson.dumps(inventory("i1", ts=T0 + 21 * 3_600_000, on_hand=7)))])  # day 0
    assert not batch.rejects and batch.counts.late == 0 and store.commit(batch)
    assert store.read_standing("inventory")["s1:A"].values == (7, 0)
    sale = {"event_id": "s1", "type": "sale", "ts": T0, "store": "s1", "sku": "A", "qty": 1}
    assert ing.apply([Record(2, orjson.dumps(sale))]).counts.late == 1  # a sale of that day is late


def test_a_replayed_batch_changes_nothing(store: WindowStore) -> None:
    ing = ingestor(store)
    batch = ing.apply([Record(0, orjson.dumps(inventory(on_hand=3)))])
    assert store.commit(batch)
    assert not store.commit(batch)  # fenced: the offset moved on
    assert store.read_standing("inventory")["s1:A"].values == (3, 0)


# ------------------------------------------------------------------------------------------- the forecaster
class Lead:
    """Forecasts 1 unit per bucket; its lead-time quantiles at (0.5, 0.9, 0.99) are L x (1, 2, 3)."""

    model_version, min_history, horizon, quantiles = 0, 2, 4, (0.5,)

    def learn(self, history, *rest):
        return {}

    def forecast(self, history, *rest):
        size = len(history)
        steps = np.arange(1, self.horizon + 1, dtype=np.float64)[None, :, None]
        self.last_lead = np.broadcast_to(steps * np.array([1.0, 2.0, 3.0]), (size, self.horizon, 3)).copy()
        return np.ones((size, self.horizon, 1)), np.ones((size, self.horizon))

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_each_series_gets_its_policy_and_with_an_inventory_an_order() -> None:
    store, sink = MemoryWindowStore(), MemorySink()
    sales = PartitionIngestor("sales", 0, DAILY, 0, 30, store.load_partition("sales", 0))
    commit(store, sales, [{"event_id": f"s{k}", "type": "sale", "ts": T0, "store": "s1", "sku": sku, "qty": 1}
                          for k, sku in enumerate("ABC")])
    commit(store, ingestor(store), [policy("o1", review=2, service_level=0.9),  # store s1: review 2, level 0.9
                                    policy("o2", sku="C", lead_time=3, review=3),  # 6 > the horizon of 4
                                    inventory("i1", on_hand=2.5, on_order=1)])
    config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=7, quantiles=(0.5,), inputs=(),
                              policy=Policy(1, 1, (0.99,)), lead_levels=(0.5, 0.9, 0.99))
    loop = Forecaster(config, store, Lead(), sink, MemoryCheckpoints(), lambda s: b"", dict)
    loop.close_bucket(D0)
    names, targets = sink.published[-1][1], sink.targets[-1]
    assert targets is not None and names == ["s1:A", "s1:B", "s1:C"]
    # A and B: lead 1 (settings) + review 2 (store) = 3 buckets at 0.9 -> 3 x 2; C: the settings' 2 at 0.99 -> 2 x 3
    assert targets.protection.tolist() == [3, 3, 2] and targets.order_up_to.tolist() == [6.0, 6.0, 6.0]
    assert targets.source == ["store", "store", "settings"] and list(targets.notes) == [2]
    assert targets.order_quantity[0] == 2.5 and np.isnan(targets.order_quantity[1:]).all()  # 6 - 2.5 - 1


def test_inspect_series_shows_the_policies_and_the_inventory_a_target_uses() -> None:
    from tidecast.commands.inspect_cmd import series_report
    from tidecast.config import Settings

    store = MemoryWindowStore()
    commit(store, ingestor(store), [policy("o1", review=2), policy("o2", sku="A", service_level=0.9),
                                    inventory("i1", on_hand=2.5)])
    report = series_report(store, "s1:A", Settings())
    assert report["policy"]["store"] == {"ts": "2024-10-08T00:00:00+00:00", "lead_time": None, "review": 2,
                                         "service_level": None}
    assert report["policy"]["series"]["service_level"] == 0.9 and report["inventory"]["on_hand"] == 2.5
    assert series_report(store, "s2:B", Settings())["inventory"] is None
