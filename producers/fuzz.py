"""A hostile corpus: messages no correct producer sends, each one a way to crash, stall or corrupt an ingest.

:func:`hostile` yields :class:`Hostile` messages, deterministically per seed, cycling through
:data:`CASES`: invalid JSON, non-UTF-8 bytes, empty and huge payloads and keys, deep nesting, wrong types,
NaN and Infinity, huge and negative numbers, timestamps in 1970 and 2200 and from the far future, unknown
event types, ids that are too long or not printable, and plans that are malformed or too far ahead. Each is
built from a real event of the stream it is mixed into (``like``), so everything but the broken part looks
right.

Every hostile message must end in the DLQ with a reason. Most break the event contract outright
(:func:`tidecast.stream.events.validate` rejects them); the three :data:`TIME_GUARDED` cases that are
valid on their own are rejected by the ingest's time guards: ``ts_1970`` is ``late`` once a partition has a
watermark, ``ts_far_future`` (2199) is ``future`` (more than ``TIDECAST_MAX_FUTURE`` past the wall clock),
and ``plan_far_ahead`` plans a bucket beyond the planning horizon. Send them into partitions that already
hold an earlier event (the chaos harness gives them the key of a first-day event): the first record of a
partition has no watermark to be late against, so a ``ts_1970`` there is applied.

>>> like = {"event_id": "e1", "type": "sale", "ts": "2026-01-05T10:00:00+00:00", "sku": "A", "qty": 1}
>>> corpus = list(hostile([like], 2 * len(CASES), seed=1))
>>> len(corpus), sorted({m.case for m in corpus}) == sorted(CASES)
(66, True)
>>> from tidecast.stream.events import InvalidEvent, validate
>>> def rejected(message):
...     try:
...         validate(message.value)
...     except InvalidEvent:
...         return True
...     return message.case in TIME_GUARDED
>>> all(rejected(m) for m in corpus)
True
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import orjson

HUGE_BYTES = 300_000
"""The size of the huge payloads and keys: far past the DLQ cap (``TIDECAST_DLQ_MAX_BYTES``, 64 KiB) and under
the broker's default 1 MB message limit."""
HUGE_CASES = ("huge_payload", "huge_key")
HUGE_EVERY = 10
"""The huge cases come in one cycle through :data:`CASES` of every ``HUGE_EVERY`` (the first one included), so a
large corpus stays a few megabytes per thousand messages."""
TIME_GUARDED = ("ts_1970", "ts_far_future", "plan_far_ahead")
"""Cases that are valid events taken alone: the ingest rejects them as ``late``, ``future``, and a plan for a
bucket beyond the planning horizon."""


class Hostile(NamedTuple):
    """One message to send raw: ``case`` names what is wrong with it."""

    case: str
    key: bytes | None
    value: bytes


def _dumps(doc: object) -> bytes:
    return orjson.dumps(doc)


def _with(doc: dict, **changes: object) -> bytes:
    return _dumps({**doc, **changes})


def _without(doc: dict, name: str) -> bytes:
    return _dumps({k: v for k, v in doc.items() if k != name})


def _plan(doc: dict, **fields: object) -> bytes:
    """A plan for the series of ``doc``, issued at its time, with ``fields``."""
    return _dumps({"event_id": f"{doc['event_id']}-plan", "type": "plan", "ts": doc["ts"], "store": doc.get("store")
                   or "all", "sku": doc["sku"], **fields})


_Case = Callable[[dict, random.Random], tuple[bytes | None, bytes]]


def _numeric_field(doc: dict) -> str:
    return "qty" if doc.get("type") == "sale" else "ts"


CASES: dict[str, _Case] = {
    "truncated_json": lambda d, r: (None, _dumps(d)[: r.randint(1, len(_dumps(d)) - 1)]),
    "not_json": lambda d, r: (None, bytes(r.getrandbits(8) for _ in range(r.randint(1, 64))) + b"\x00}"),
    "non_utf8": lambda d, r: (None, _dumps(d).replace(b'"sku":"', b'"sku":"\xff\xfe', 1)),
    "empty_payload": lambda d, r: (None, b""),
    "empty_key_and_payload": lambda d, r: (b"", b""),
    "huge_payload": lambda d, r: (None, _with(d, sku="X" * HUGE_BYTES)),
    "huge_key": lambda d, r: (b"K" * HUGE_BYTES, b"{" + b" " * 10),
    "deep_nesting": lambda d, r: (None, b"[" * 5000 + b"]" * 5000),
    "deep_nesting_field": lambda d, r: (None, _dumps(d)[:-1] + b',"sku":' + b"[" * 600 + b"]" * 600 + b"}"),
    "top_level_array": lambda d, r: (None, _dumps([d])),
    "top_level_null": lambda d, r: (None, b"null"),
    "nan": lambda d, r: (None, _dumps(d)[:-1] + f',"{_numeric_field(d)}":NaN}}'.encode()),
    "infinity": lambda d, r: (None, _dumps(d)[:-1] + f',"{_numeric_field(d)}":-Infinity}}'.encode()),
    "float_overflow": lambda d, r: (None, _dumps(d)[:-1] + f',"{_numeric_field(d)}":1e999}}'.encode()),
    "huge_number": lambda d, r: (None, _with(d, qty=1e308, price=1e308) if d.get("type") == "sale"
                                 else _with(d, ts=2**63 - 1)),
    "huge_integer": lambda d, r: (None, _dumps(d)[:-1] + b',"' + _numeric_field(d).encode() + b'":'
                                  + b"9" * 400 + b"}"),
    "negative_price": lambda d, r: (None, _with(d, type="sale", qty=1, price=-r.uniform(0.01, 1e6))),
    "zero_qty": lambda d, r: (None, _with(d, type="sale", qty=0)),
    "wrong_type_qty": lambda d, r: (None, _with(d, type="sale", qty=r.choice(["3", [3], {"n": 3}, True, None]))),
    "wrong_type_ts": lambda d, r: (None, _with(d, ts=r.choice([True, [1], {"t": 1}, None, "yesterday", ""]))),
    "wrong_type_sku": lambda d, r: (None, _with(d, sku=r.choice([12, None, [], {"a": 1}, ""]))),
    "ts_1970": lambda d, r: (None, _with(d, ts=r.randint(0, 86_400_000))),
    "ts_2200": lambda d, r: (None, _with(d, ts="2200-01-01T00:00:00+00:00")),
    "ts_far_future": lambda d, r: (None, _with(d, ts="2199-06-01T00:00:00+00:00")),
    "unknown_type": lambda d, r: (None, _with(d, type=r.choice(["refund", "SALE", "", None, 7]))),
    "missing_field": lambda d, r: (None, _without(d, r.choice(["sku", "ts", "event_id", "type"]))),
    "long_id": lambda d, r: (None, _with(d, event_id="e" * 201)),
    "control_chars": lambda d, r: (None, _with(d, sku="A\x00\x1b[31m")),
    "colon_in_store": lambda d, r: (None, _with(d, store="a:b")),
    "plan_far_ahead": lambda d, r: (None, _plan(d, promo=True, **{"for": "2199-01-01T00:00:00+00:00"})),
    "plan_wrong_type": lambda d, r: (None, _plan(d, promo=r.choice(["yes", 1, None, [True]]), **{"for": d["ts"]})),
    "plan_negative_price": lambda d, r: (None, _plan(d, price=-r.uniform(0.01, 100), **{"for": d["ts"]})),
    "plan_missing_for": lambda d, r: (None, _plan(d, open=False)),
}


def hostile(like: Sequence[dict], n: int, seed: int = 0) -> Iterator[Hostile]:
    """``n`` hostile messages, cycling through :data:`CASES` in a shuffled order (the huge ones in every
    :data:`HUGE_EVERY`-th cycle), each built from an event drawn from ``like`` (non-empty: event objects of the
    stream they are mixed into)."""
    if not like:
        raise ValueError("hostile() needs at least one real event to build on")
    rng = random.Random(seed)
    made = 0
    for cycle in itertools.count():
        names = [name for name in CASES if cycle % HUGE_EVERY == 0 or name not in HUGE_CASES]
        rng.shuffle(names)
        for case in names:
            if made == n:
                return
            key, value = CASES[case](dict(rng.choice(like)), rng)
            yield Hostile(case, key, value)
            made += 1
