"""Fault injection for exercising a pipeline: malformed messages and re-sent duplicates.

Real producers retry (so the same event arrives twice) and real systems emit garbage now and then.
:func:`with_faults` mixes both into a stream of event objects, deterministically per seed, and says
which is which so a test can check that the DLQ holds exactly the malformed ones.

>>> docs = [{"event_id": str(i), "type": "sale", "ts": i, "sku": "A", "qty": 1} for i in range(1000)]
>>> out = list(with_faults(docs, malformed=0.01, duplicates=0.01, seed=1))
>>> sorted({o.kind for o in out}), sum(o.kind == "event" for o in out)
(['duplicate', 'event', 'malformed'], 1000)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

import orjson

Kind = Literal["event", "duplicate", "malformed"]


class Outgoing(NamedTuple):
    """One message to send: ``value`` is the exact bytes; ``doc`` the object it encodes, when it is one."""

    kind: Kind
    value: bytes
    doc: dict | None


def _breakages(doc: dict) -> list[dict | bytes]:
    """Ways a producer can get an event wrong (each one breaks the contract in a different field)."""
    broken_json = orjson.dumps(doc)[:-3]
    return [
        broken_json,
        b"",
        b"[1, 2, 3]",
        {k: v for k, v in doc.items() if k != "sku"},
        {**doc, "type": "refund"},
        {**doc, "ts": "yesterday"},
        {**doc, "ts": "2026-01-05T10:00:00"},
        {**doc, "qty": "three"} if doc.get("type") == "sale" else {**doc, "action": "buy"},
        {**doc, "price": -1.0} if doc.get("type") == "sale" else {**doc, "event_id": 12},
        {**doc, "store": "a:b"},
    ]


def with_faults(docs: Iterable[dict], malformed: float, duplicates: float, seed: int = 0) -> Iterator[Outgoing]:
    """Yield every doc of ``docs`` once as an ``event``, plus malformed messages and re-sent duplicates.

    A duplicate is the identical message again, re-sent soon after its original (within a few dozen
    messages, as a producer retry would); a malformed message is inserted before a doc it was derived from.
    """
    if not (0 <= malformed < 1 and 0 <= duplicates < 1):
        raise ValueError("fault rates must be in [0, 1)")
    rng = random.Random(seed)
    pending: list[tuple[int, Outgoing]] = []
    for n, doc in enumerate(docs):
        if rng.random() < malformed:
            bad = rng.choice(_breakages(doc))
            yield Outgoing("malformed", bad if isinstance(bad, bytes) else orjson.dumps(bad), None)
        value = orjson.dumps(doc)
        yield Outgoing("event", value, doc)
        if rng.random() < duplicates:
            pending.append((n + rng.randint(0, 30), Outgoing("duplicate", value, doc)))
        while pending and pending[0][0] <= n:
            yield pending.pop(0)[1]
    for _, outgoing in pending:
        yield outgoing
