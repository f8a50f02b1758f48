"""The JSON Schemas in docs/schemas agree with the validator and with what tidecast emits."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from tidecast.consumers.dlq import dlq_message
from tidecast.producers.faults import _breakages
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.events import InvalidEvent, validate
from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.ingest import Reject

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def schema(name: str) -> jsonschema.Validator:
    document = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_generated_events_match_the_schema() -> None:
    events = schema("event.schema.json")
    for doc in itertools.islice(generate(SyntheticConfig(series=20, days=3, seed=1)), 3000):
        events.validate(doc)


@pytest.mark.parametrize("n", range(10))
def test_what_the_validator_rejects_the_schema_rejects(n: int) -> None:
    sale = {"event_id": "e1", "type": "sale", "ts": "2026-01-05T10:00:00+00:00", "sku": "A", "qty": 2, "price": 1.0}
    bad = _breakages(sale)[n]
    raw = bad if isinstance(bad, bytes) else orjson.dumps(bad)
    with pytest.raises(InvalidEvent):
        validate(raw)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return  # not JSON at all: no schema applies
    assert not schema("event.schema.json").is_valid(doc)


def test_dlq_messages_match_their_schema() -> None:
    message = dlq_message(Reject("tidecast.sales", 2, 99, None, b"\x00\xff", "not valid JSON"), 1_767_600_000_000)
    schema("dlq.schema.json").validate(orjson.loads(message))
    cut = orjson.loads(dlq_message(Reject("tidecast.sales", 2, 100, None, b"{" * 70_000, "r" * 5000), 0))
    schema("dlq.schema.json").validate(cut)  # truncated payload and reason
    with pytest.raises(jsonschema.ValidationError):
        schema("dlq.schema.json").validate({k: v for k, v in cut.items() if k != "payload_size"})


def test_forecast_messages_match_their_schema() -> None:
    batch = ForecastBatch(bucket_seconds=86_400, origin_ms=1_767_571_200_000, quantiles=(0.1, 0.5, 0.9),
                          model_version=7, issued_at_ms=1_767_571_260_000)
    values = np.array([[[0.0, 1.0, 2.0], [0.0, 2.0, 5.0]], [[1.0, 3.0, 9.0], [2.0, 3.0, 8.0]]], np.float32)
    mean = np.array([[1.2, 2.4], [4.0, 3.9]], np.float32)
    docs = [orjson.loads(value) for _, value in batch.messages(["all:A", "s1:B"], values, mean)]
    validator = schema("forecast.schema.json")
    for doc in docs:
        validator.validate(doc)
    assert [d["mean"] for d in docs] == [[1.2, 2.4], [4.0, 3.9]]
    older = {k: v for k, v in docs[0].items() if k != "mean"}  # a message from before the mean existed
    validator.validate(older)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**docs[0], "mean": [-1.0, 2.0]})
    with pytest.raises(ValueError):
        list(batch.messages(["all:A"], values[:1], mean))  # one mean row per series


def test_target_messages_match_their_schema_and_name_their_forecast() -> None:
    from tidecast.models.replenishment import Policy
    from tidecast.stream.standing import StandingEntry
    from tidecast.stream.stock_targets import OVER_HORIZON, stock_targets
    from tidecast.stream.target_message import target_messages

    batch = ForecastBatch(bucket_seconds=86_400, origin_ms=1_767_571_200_000, quantiles=(0.1, 0.5, 0.9),
                          model_version=7, issued_at_ms=1_767_571_260_000)
    levels = (0.1, 0.5, 0.9, 0.95)
    names = ["all:A", "s1:B", "s1:C"]
    lead = np.cumsum(np.tile(np.array([0.5, 1.0, 2.0, 2.5], np.float32), (3, 3, 1)), axis=1)  # [3, H=3, 4]
    values = np.zeros((3, 3, 3), np.float32)
    forecasts = [orjson.loads(v) for _, v in batch.messages(names, values, np.zeros((3, 3)))]
    policies = {"s1": StandingEntry(0, 0, (None, None, 0.925)), "s1:C": StandingEntry(0, 1, (3, None, None))}
    inventory = {"s1:B": StandingEntry(1_767_560_000_000, 2, (1.25, 1.0))}
    stock = stock_targets(names, lead, levels, Policy(1, 1, (0.95,)), policies, inventory)
    docs = [orjson.loads(v) for _, v in target_messages(batch, names, stock)]
    validator = schema("target.schema.json")
    for doc, forecast in zip(docs, forecasts, strict=True):
        validator.validate(doc)
        assert doc["forecast_id"] == forecast["forecast_id"] and doc["origin"] == forecast["origin"]
        assert doc["protection"] == {"buckets": 2, "quantiles": list(levels), "values": [1.0, 2.0, 4.0, 5.0]}
    plain, store_level, over = docs
    assert plain["order_up_to"] == 5.0 and plain["policy_from"] == "settings" and "order_quantity" not in plain
    # the store's 0.925 lies halfway between the learned 0.9 and 0.95; on hand + on order 2.25 -> order 2.25
    assert store_level["order_up_to"] == 4.5 and store_level["service_level"] == 0.925
    assert store_level["policy_from"] == "store" and store_level["order_quantity"] == 2.25
    assert store_level["inventory"] == {"on_hand": 1.25, "on_order": 1.0, "as_of": "2026-01-04T20:53:20+00:00"}
    # lead 3 + review 1 is longer than the horizon of 3: the settings' policy, and why
    assert over["lead_time"] == 1 and over["policy_from"] == "settings" and over["policy_note"] == OVER_HORIZON
    with pytest.raises(ValueError, match="within the horizon"):
        stock_targets(names, lead, levels, Policy(3, 1, (0.95,)), {}, {})
