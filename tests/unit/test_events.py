"""The event contract: what is accepted, and the precise reason for what is not."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidecast.stream.events import Bounds, Click, InvalidEvent, Sale, series_id, split_series, validate

SALE = {"event_id": "e1", "type": "sale", "ts": "2026-01-05T10:00:00+00:00", "sku": "A1", "store": "s1", "qty": 2,
        "price": 3.5, "promo": True}
CLICK = {"event_id": "e2", "type": "click", "ts": 1767607200000, "sku": "A1", "action": "add_to_cart"}


def reason(doc: dict | bytes) -> str:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(InvalidEvent) as caught:
        validate(raw)
    return str(caught.value)


def test_a_full_sale() -> None:
    assert validate(orjson.dumps(SALE)) == Sale("e1", 1767607200000, "s1:A1", 2, 3.5, True)


def test_a_click_without_store_uses_the_default_store() -> None:
    assert validate(orjson.dumps(CLICK)) == Click("e2", 1767607200000, "all:A1", "add_to_cart")


def test_offsets_and_z_are_honoured() -> None:
    a = validate(orjson.dumps({**SALE, "ts": "2026-01-05T11:00:00+01:00"}))
    b = validate(orjson.dumps({**SALE, "ts": "2026-01-05T10:00:00Z"}))
    assert a.ts_ms == b.ts_ms == 1767607200000


def test_unknown_fields_are_ignored() -> None:
    assert validate(orjson.dumps({**SALE, "basket": [1, 2], "customer": {"id": 7}})).series == "s1:A1"


def test_negative_quantity_is_a_return_not_an_error() -> None:
    assert validate(orjson.dumps({**SALE, "qty": -3})).qty == -3


@pytest.mark.parametrize(("doc", "expected"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object but an array"),
    (b"", "empty message"),
    ({k: v for k, v in SALE.items() if k != "event_id"}, "missing field 'event_id'"),
    ({**SALE, "event_id": 7}, "field 'event_id' must be a string, got a number"),
    ({**SALE, "event_id": ""}, "field 'event_id' must be 1 to 200 printable characters"),
    ({**SALE, "sku": "a\nb"}, "field 'sku' must be 1 to 200 printable characters"),
    ({k: v for k, v in SALE.items() if k != "sku"}, "missing field 'sku'"),
    ({**SALE, "store": "a:b"}, "field 'store' must not contain ':'"),
    ({k: v for k, v in SALE.items() if k != "ts"}, "missing field 'ts'"),
    ({**SALE, "ts": "yesterday"}, "field 'ts' is not ISO-8601"),
    ({**SALE, "ts": "2026-01-05T10:00:00"}, "field 'ts' has no UTC offset"),
    ({**SALE, "ts": True}, "field 'ts' must be an ISO-8601 string or epoch milliseconds, got a boolean"),
    ({**SALE, "ts": -5}, "field 'ts' is out of range"),
    ({k: v for k, v in SALE.items() if k != "type"}, "missing field 'type'"),
    ({**SALE, "type": "refund"}, "field 'type' must be 'sale', 'click', 'plan', 'policy' or 'inventory', got 'refund'"),
    ({k: v for k, v in SALE.items() if k != "qty"}, "missing field 'qty'"),
    ({**SALE, "qty": "2"}, "field 'qty' must be a finite number, got a string"),
    ({**SALE, "qty": True}, "field 'qty' must be a finite number, got a boolean"),
    ({**SALE, "qty": 0}, "field 'qty' must not be 0"),
    ({**SALE, "price": -1}, "field 'price' must not be negative"),
    ({**SALE, "price": "cheap"}, "field 'price' must be a finite number, got a string"),
    ({**SALE, "promo": "yes"}, "field 'promo' must be true or false, got a string"),
    ({k: v for k, v in CLICK.items() if k != "action"}, "missing field 'action'"),
    ({**CLICK, "action": "buy"}, "field 'action' must be 'view' or 'add_to_cart', got 'buy'"),
])
def test_rejections_say_exactly_why(doc: dict | bytes, expected: str) -> None:
    assert reason(doc).startswith(expected)


def test_non_finite_numbers_are_not_json() -> None:
    assert reason(b'{"event_id":"e","type":"sale","ts":1,"sku":"A","qty":NaN}').startswith("not valid JSON")
    assert reason(b'{"event_id":"e","type":"sale","ts":1,"sku":"A","qty":1e400}').startswith("not valid JSON")


def test_series_ids_round_trip() -> None:
    assert series_id(None, "A:1") == "all:A:1"
    assert split_series("s1:A:1") == ("s1", "A:1")
    with pytest.raises(ValueError):
        split_series("nocolon")


NOT_PRINTABLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")  # what str.isprintable() refuses
ids = st.text(st.characters(blacklist_categories=NOT_PRINTABLE), min_size=1, max_size=20)


@given(event_id=ids, sku=ids, store=ids.filter(lambda s: ":" not in s), qty=st.integers(-50, 50).filter(bool),
       price=st.none() | st.floats(0, 1e6), ts=st.integers(0, 7_000_000_000_000))
def test_every_well_formed_sale_is_accepted(event_id: str, sku: str, store: str, qty: int, price: float | None,
                                            ts: int) -> None:
    doc = {"event_id": event_id, "type": "sale", "ts": ts, "sku": sku, "store": store, "qty": qty, "price": price}
    sale = validate(orjson.dumps(doc))
    assert sale == Sale(event_id, ts, f"{store}:{sku}", qty, price, False)
    assert split_series(sale.series) == (store, sku)


def test_quantities_and_prices_beyond_the_bounds_are_rejected_with_the_bound_named() -> None:
    assert reason({**SALE, "qty": 1e308}) == (
        "field 'qty' must be within -1000000 to 1000000 (TIDECAST_MAX_QTY), got 1e+308"
    )
    assert "TIDECAST_MAX_QTY" in reason({**SALE, "qty": 2**64 - 1})
    assert "TIDECAST_MAX_QTY" in reason({**SALE, "qty": -1_000_001})
    assert reason({**SALE, "price": 1e8}) == (
        "field 'price' must be at most 10000000 (TIDECAST_MAX_PRICE), got 100000000.0"
    )
    edge = validate(orjson.dumps({**SALE, "qty": -1_000_000, "price": 10_000_000}))
    assert isinstance(edge, Sale) and edge.qty == -1_000_000


def test_the_bounds_are_configurable() -> None:
    raw = orjson.dumps({**SALE, "qty": 50, "price": 20.0})
    assert isinstance(validate(raw), Sale)
    with pytest.raises(InvalidEvent, match=r"within -10 to 10 \(TIDECAST_MAX_QTY\), got 50"):
        validate(raw, Bounds(max_qty=10))
    with pytest.raises(InvalidEvent, match=r"at most 12.5 \(TIDECAST_MAX_PRICE\), got 20.0"):
        validate(raw, Bounds(max_price=12.5))


@pytest.mark.parametrize("field", ["sku", "event_id", "store", "type", "action", "ts"])
def test_reasons_quote_only_a_short_prefix_of_a_huge_value(field: str) -> None:
    doc = {**(CLICK if field == "action" else SALE), field: "\u00e9" + "A" * 100_000}
    text = reason(doc)
    assert len(text) < 200, text
    assert "'\u00e9AAA" in text and "… (100001 characters)" in text
