"""The event contract: parse and validate one Kafka message into a :class:`Sale`, a :class:`Click` or a :class:`Plan`.

Validation is strict about what tidecast uses and silent about the rest: unknown extra fields are
ignored, never fatal. Every rejection carries a precise, human-readable reason that goes to the DLQ.

>>> validate(b'{"event_id": "e1", "type": "sale", "ts": "2026-01-05T10:00:00+01:00", "sku": "A1", "qty": 2}')
Sale(event_id='e1', ts_ms=1767603600000, series='all:A1', qty=2, price=None, promo=False)
>>> validate(b'{"event_id": "e2", "type": "click", "ts": 1767603600000, "sku": "A1", "store": "s1", "action": "view"}')
Click(event_id='e2', ts_ms=1767603600000, series='s1:A1', action='view')
>>> validate(b'{"event_id": "e3", "type": "sale", "ts": "2026-01-05T10:00:00", "sku": "A1", "qty": 1}')
Traceback (most recent call last):
...
tidecast.stream.events.InvalidEvent: field 'ts' has no UTC offset: '2026-01-05T10:00:00'

A plan says what is known about a future bucket (``for``) of a series, or of a whole store without ``sku``;
``ts`` is when it was issued. Absent fields are unknown; ``"event": null`` is "no calendar event":

>>> validate(b'{"event_id": "p1", "type": "plan", "ts": 0, "for": 86400000, "store": "s1", "promo": true, '
...          b'"event": null}')
Plan(event_id='p1', ts_ms=0, target='s1', for_ms=86400000, values=(True, None, None, ''))

Two standing events feed the stock targets (docs/decisions.md): a ``policy`` overrides the replenishment policy
of a series or a whole store (absent fields fall back), and an ``inventory`` gives a series' stock position:

>>> validate(b'{"event_id": "o1", "type": "policy", "ts": 0, "store": "s1", "service_level": 0.98}')
Standing(event_id='o1', ts_ms=0, kind='policy', target='s1', values=(None, None, 0.98))
>>> validate(b'{"event_id": "i1", "type": "inventory", "ts": 0, "store": "s1", "sku": "A1", "on_hand": 7}')
Standing(event_id='i1', ts_ms=0, kind='inventory', target='s1:A1', values=(7, 0))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import orjson

DEFAULT_STORE = "all"
"""Store used in the series id when an event has no ``store``: series ``all:SKU``."""

MAX_ID_LENGTH = 200
MAX_QTY = 1_000_000
"""Default bound on ``|qty|`` of one sale line (``TIDECAST_MAX_QTY``)."""
MAX_PRICE = 10_000_000
"""Default bound on ``price`` (``TIDECAST_MAX_PRICE``)."""
QUOTE_LENGTH = 80
"""Reasons quote at most this many characters of a bad value (then ``…`` and its length)."""
TS_MIN_MS = 0
TS_MAX_MS = 7_258_118_400_000  # 2200-01-01T00:00Z
ACTIONS = ("view", "add_to_cart")
PLAN_FIELDS = ("promo", "price", "open", "event")
"""What a plan may say about a future bucket, in the order of :attr:`Plan.values`."""
NO_EVENT = ""
"""``Plan.values``' event when the plan says there is no calendar event (``"event": null``); None is unknown."""
POLICY_FIELDS = ("lead_time", "review", "service_level")
"""What a ``policy`` event may override, in the order of :attr:`Standing.values` (None: fall back)."""
INVENTORY_FIELDS = ("on_hand", "on_order")
"""A series' stock position, in the order of :attr:`Standing.values`."""
STANDING_KINDS = {"policy": POLICY_FIELDS, "inventory": INVENTORY_FIELDS}
"""The standing events: a value that holds until the next one of its target (no bucket)."""
MAX_POLICY_BUCKETS = 10_000
"""Bound on a policy's ``lead_time`` and ``review`` (buckets); the horizon bounds their sum where it is used."""
SERVICE_LEVELS = (0.5, 0.99)
"""The service levels a ``policy`` may ask for: those the lead-time quantiles reach (their highest default level)."""


class InvalidEvent(ValueError):
    """The message breaks the event contract; ``str(exc)`` is the reason sent to the DLQ."""


class Bounds(NamedTuple):
    """Numeric bounds of a sale line. With both finite, every per-bucket sum stays finite and exact enough.

    >>> validate(b'{"event_id": "e1", "type": "sale", "ts": 0, "sku": "A", "qty": 5}', Bounds(max_qty=4))
    Traceback (most recent call last):
    ...
    tidecast.stream.events.InvalidEvent: field 'qty' must be within -4 to 4 (TIDECAST_MAX_QTY), got 5
    """

    max_qty: float = MAX_QTY
    max_price: float = MAX_PRICE


DEFAULT_BOUNDS = Bounds()


class Sale(NamedTuple):
    event_id: str
    ts_ms: int
    series: str
    qty: float
    price: float | None
    promo: bool


class Click(NamedTuple):
    event_id: str
    ts_ms: int
    series: str
    action: str


class Plan(NamedTuple):
    """What is known ahead about bucket ``for_ms`` of ``target``: a series id (``store:sku``) or a store (no
    ``:``). ``ts_ms`` is when the plan was issued (its event time). ``values`` follow :data:`PLAN_FIELDS`:
    promo (bool), price (number), open (bool), event (a name, or :data:`NO_EVENT`); None = unknown."""

    event_id: str
    ts_ms: int
    target: str
    for_ms: int
    values: tuple[bool | None, float | None, bool | None, str | None]


class Standing(NamedTuple):
    """A standing event of ``kind`` (:data:`STANDING_KINDS`) for ``target``: a ``policy`` of a series
    (``store:sku``) or a store, or the ``inventory`` of a series. ``values`` follow the kind's fields; a policy's
    None falls back to the store's, then to the settings."""

    event_id: str
    ts_ms: int
    kind: str
    target: str
    values: tuple


Event = Sale | Click | Plan | Standing


def series_id(store: str | None, sku: str) -> str:
    """``store:sku``; a missing store is :data:`DEFAULT_STORE`. ``series_id(None, "A1") == "all:A1"``."""
    return f"{store or DEFAULT_STORE}:{sku}"


def split_series(series: str) -> tuple[str, str]:
    """Inverse of :func:`series_id`: ``split_series("s1:A:1") == ("s1", "A:1")`` (stores hold no ':')."""
    store, sep, sku = series.partition(":")
    if not sep or not store or not sku:
        raise ValueError(f"not a series id (STORE:SKU): {series!r}")
    return store, sku


def split_many(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Stores and skus of many series ids (checked like :func:`split_series`).

    >>> split_many(["s1:A", "all:B:2"])
    (['s1', 'all'], ['A', 'B:2'])
    """
    pairs = [split_series(name) for name in names]
    return [store for store, _ in pairs], [sku for _, sku in pairs]


def validate(raw: bytes | str | None, bounds: Bounds = DEFAULT_BOUNDS) -> Event:
    """Parse one message and check it against the contract (see docs/events.md)."""
    if not raw:
        raise InvalidEvent("empty message")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise InvalidEvent(f"not a JSON object but {_kind(doc)}")
    return validate_dict(doc, bounds)


def validate_dict(doc: dict, bounds: Bounds = DEFAULT_BOUNDS) -> Event:
    """Validate an already parsed event object."""
    get = doc.get
    kind = get("type")
    if kind == "plan":
        return _plan(doc, bounds)
    if type(kind) is str and kind in STANDING_KINDS:
        return _standing(doc, kind, bounds)
    event_id, sku, store = get("event_id"), get("sku"), get("store")
    if not (  # the fast path checks inline; the slow one explains what is wrong
        type(event_id) is str and 0 < len(event_id) <= MAX_ID_LENGTH and event_id.isprintable()
        and type(sku) is str and 0 < len(sku) <= MAX_ID_LENGTH and sku.isprintable()
    ):
        event_id, sku = _identifier(doc, "event_id"), _identifier(doc, "sku")
    kind = get("type", _MISSING)
    if store is not None:
        if not (type(store) is str and 0 < len(store) <= MAX_ID_LENGTH and store.isprintable()):
            store = _identifier(doc, "store")
        if ":" in store:
            raise InvalidEvent(f"field 'store' must not contain ':', got {quote(store)}")
    series = series_id(store, sku)
    ts_ms = parse_ts(get("ts", _MISSING))
    if kind == "sale":
        qty = get("qty", _MISSING)
        if type(qty) is not int:
            qty = _number(doc, "qty")
        if qty == 0:
            raise InvalidEvent("field 'qty' must not be 0 (negative quantities are returns)")
        max_qty = bounds.max_qty
        if not -max_qty <= qty <= max_qty:
            raise InvalidEvent(
                f"field 'qty' must be within -{_plain(max_qty)} to {_plain(max_qty)} (TIDECAST_MAX_QTY), got {qty!r}"
            )
        price = get("price")
        if price is not None:
            price = _number(doc, "price")
            if price < 0:
                raise InvalidEvent(f"field 'price' must not be negative, got {price!r}")
            if price > bounds.max_price:
                raise InvalidEvent(
                    f"field 'price' must be at most {_plain(bounds.max_price)} (TIDECAST_MAX_PRICE), got {price!r}"
                )
        promo = get("promo")
        if promo is None:
            promo = False
        elif type(promo) is not bool:
            raise InvalidEvent(f"field 'promo' must be true or false, got {_kind(promo)}")
        return Sale(event_id, ts_ms, series, qty, price, promo)
    if kind == "click":
        action = get("action", _MISSING)
        if action not in ACTIONS:
            if action is _MISSING:
                raise InvalidEvent("missing field 'action'")
            raise InvalidEvent(f"field 'action' must be 'view' or 'add_to_cart', got {quote(action)}")
        return Click(event_id, ts_ms, series, action)
    if kind is _MISSING:
        raise InvalidEvent("missing field 'type'")
    raise InvalidEvent(f"field 'type' must be 'sale', 'click', 'plan', 'policy' or 'inventory', got {quote(kind)}")


def _target(doc: dict) -> str:
    """A plan's or a policy's target: ``store`` (default ``all``), or the series ``store:sku`` with a ``sku``."""
    store = doc.get("store")
    if store is not None:
        store = _identifier(doc, "store")
        if ":" in store:
            raise InvalidEvent(f"field 'store' must not contain ':', got {quote(store)}")
    if doc.get("sku") is not None:
        return series_id(store, _identifier(doc, "sku"))
    return store or DEFAULT_STORE


def _standing(doc: dict, kind: str, bounds: Bounds) -> Standing:
    """Validate a ``policy`` (of a series or a store) or an ``inventory`` (of a series); see docs/events.md."""
    event_id = _identifier(doc, "event_id")
    target = _target(doc)
    ts_ms = parse_ts(doc.get("ts", _MISSING))
    if kind == "inventory":
        if ":" not in target:
            raise InvalidEvent("missing field 'sku' (an inventory is a series' stock position)")
        on_hand = _number(doc, "on_hand")
        on_order = _number(doc, "on_order") if doc.get("on_order") is not None else 0
        for name, value in (("on_hand", on_hand), ("on_order", on_order)):
            low = 0 if name == "on_order" else -bounds.max_qty
            if not low <= value <= bounds.max_qty:
                raise InvalidEvent(f"field {name!r} must be within {_plain(low)} to {_plain(bounds.max_qty)} "
                                   f"(TIDECAST_MAX_QTY), got {value!r}")
        return Standing(event_id, ts_ms, kind, target, (on_hand, on_order))
    values: list = []
    for name, low in (("lead_time", 0), ("review", 1)):
        buckets = doc.get(name)  # null is absent: the store's policy or the setting
        if type(buckets) is float and buckets.is_integer():
            buckets = int(buckets)  # 4.0 is the integer 4, as JSON Schema reads it
        if buckets is not None and not (type(buckets) is int and low <= buckets <= MAX_POLICY_BUCKETS):
            raise InvalidEvent(f"field {name!r} must be a whole number of buckets from {low} to "
                               f"{MAX_POLICY_BUCKETS}, got {quote(buckets)}")
        values.append(buckets)
    service = doc.get("service_level")
    if service is not None:
        service = _number(doc, "service_level")
        low, high = SERVICE_LEVELS
        if not low <= service <= high:
            raise InvalidEvent(f"field 'service_level' must be within {low:g} to {high:g}, got {service!r}")
    return Standing(event_id, ts_ms, kind, target, (*values, service))


def _plan(doc: dict, bounds: Bounds) -> Plan:
    """Validate a plan: ``store`` (default ``all``) and optional ``sku`` name the target; see docs/events.md."""
    get = doc.get
    event_id = _identifier(doc, "event_id")
    target = _target(doc)
    ts_ms = parse_ts(get("ts", _MISSING))
    for_ms = parse_ts(get("for", _MISSING), "for")
    promo, price, is_open, event = (get(name, _MISSING) for name in PLAN_FIELDS)
    for name, flag in (("promo", promo), ("open", is_open)):
        if flag is not _MISSING and type(flag) is not bool:
            raise InvalidEvent(f"field {name!r} must be true or false, got {_kind(flag)}")
    if price is not _MISSING:
        price = _number(doc, "price")
        if not 0 <= price <= bounds.max_price:
            raise InvalidEvent(
                f"field 'price' must be within 0 to {_plain(bounds.max_price)} (TIDECAST_MAX_PRICE), got {price!r}"
            )
    if event is None:
        event = NO_EVENT
    elif event is not _MISSING:
        if type(event) is not str:
            raise InvalidEvent(f"field 'event' must be a string or null, got {_kind(event)}")
        if not event or len(event) > MAX_ID_LENGTH or not event.isprintable():
            raise InvalidEvent(f"field 'event' must be 1 to {MAX_ID_LENGTH} printable characters or null, "
                               f"got {quote(event)}")
    values = tuple(None if v is _MISSING else v for v in (promo, price, is_open, event))
    return Plan(event_id, ts_ms, target, for_ms, values)  # type: ignore[arg-type]


def parse_ts(value: object, name: str = "ts") -> int:
    """An ISO-8601 string with offset, or epoch milliseconds, to epoch milliseconds (``name``: the field)."""
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(f"field {name!r} is not ISO-8601: {quote(value)}") from None
        if moment.tzinfo is None:
            raise InvalidEvent(f"field {name!r} has no UTC offset: {quote(value)}")
        ms = round(moment.timestamp() * 1000)
    elif type(value) is int:
        ms = value
    elif type(value) is float and math.isfinite(value):
        ms = math.floor(value)
    elif value is _MISSING:
        raise InvalidEvent(f"missing field {name!r}")
    else:
        raise InvalidEvent(f"field {name!r} must be an ISO-8601 string or epoch milliseconds, got {_kind(value)}")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise InvalidEvent(f"field {name!r} is out of range (1970 to 2200): {quote(value)}")
    return ms


def quote(value: object, limit: int = QUOTE_LENGTH) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``…`` and the full length when longer.

    A reason quotes a short prefix of a bad value, never all of it (a 100 KB sku must not make a 100 KB reason).

    >>> quote("A" * 5), quote("A" * 500, limit=8)
    ("'AAAAA'", "'AAAAAA… (500 characters)")
    """
    text = repr(value[: limit + 1] if type(value) is str else value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if type(value) is str else ""
    return text[: limit - 1] + "…" + size


def encode(doc: dict) -> bytes:
    """Serialize an event object the way producers should: compact UTF-8 JSON."""
    return orjson.dumps(doc)


_MISSING = object()


def _identifier(doc: dict, name: str) -> str:
    value = doc.get(name, _MISSING)
    if type(value) is not str:
        if value is _MISSING:
            raise InvalidEvent(f"missing field {name!r}")
        raise InvalidEvent(f"field {name!r} must be a string, got {_kind(value)}")
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise InvalidEvent(f"field {name!r} must be 1 to {MAX_ID_LENGTH} printable characters, got {quote(value)}")
    return value


def _number(doc: dict, name: str) -> float:
    value = doc.get(name, _MISSING)
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return value
    if value is _MISSING:
        raise InvalidEvent(f"missing field {name!r}")
    raise InvalidEvent(f"field {name!r} must be a finite number, got {_kind(value)}")


def _plain(bound: float) -> str:
    """``1000000`` for ``1e6``: bounds read the way they are configured."""
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return _KIND_NAMES.get(type(value), type(value).__name__)


_KIND_NAMES = {
    bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object"
}
