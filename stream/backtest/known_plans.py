"""``backtest --known``: file columns known ahead, replayed as plan events issued H buckets before their bucket.

A retailer knows next week's promotions, openings and holidays. For every row of bucket ``b`` whose time can be
read, :func:`with_plans` adds a plan event for the row's series (``store:sku``; ``STORE:all`` for a panel of
stores), issued at the start of bucket ``b - H`` (``ts``) for the row's time (``for``), with the row's ``known``
fields. The plan then goes the live way (the plans partition, exactly as ``<prefix>plans``), so at origin ``o``
the forecaster sees the plans of ``o+1 .. o+H`` and nothing later: a plan of ``b`` is visible at origins
``b-H .. b-1``, what the retailer would have known. A known field the row leaves empty is sent as unknown,
except ``event``, whose empty cell means "no event" (``null``). Rows that are no event dict, or whose time cannot
be read, pass unchanged. The output stays in bucket order when the input is (the rows are held back H+1
buckets); otherwise the engine's sorted pass puts everything in order.

>>> from tidecast.stream.timebuckets import Buckets
>>> rows = [{"event_id": "r1", "type": "sale", "ts": "2024-01-20T00:00:00+00:00", "store": "s", "sku": "all",
...          "qty": 3, "promo": True, "open": True}]
>>> [r["type"] for r in with_plans(rows, ("promo", "event"), Buckets(86_400), horizon=7)]
['plan', 'sale']
>>> plan = next(iter(with_plans(rows, ("promo", "event"), Buckets(86_400), horizon=7)))
>>> plan["ts"], plan["for"], plan["store"], plan["sku"], plan["promo"], plan["event"]
(1705104000000, '2024-01-20T00:00:00+00:00', 's', 'all', True, None)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tidecast.stream.events import PLAN_FIELDS, InvalidEvent, parse_ts
from tidecast.stream.timebuckets import Buckets

KNOWN_FIELDS = PLAN_FIELDS
"""What ``--known`` may name: promo, price, open, event."""


def check_known(fields: Iterable[str]) -> tuple[str, ...]:
    """The ``--known`` fields, checked: each one of :data:`KNOWN_FIELDS`, once.

    >>> check_known(["promo", "open"])
    ('promo', 'open')
    """
    known = tuple(fields)
    bad = [name for name in known if name not in KNOWN_FIELDS]
    if bad or len(set(known)) != len(known):
        raise ValueError(f"--known takes fields among {', '.join(KNOWN_FIELDS)}, each once; got {', '.join(known)}")
    return known


def with_plans(rows: Iterable[dict | bytes], known: tuple[str, ...], buckets: Buckets,
               horizon: int) -> Iterator[dict | bytes]:
    """The rows, each preceded by its plan event (see the module docstring), in bucket order if they are."""
    held: dict[int, list[dict | bytes]] = {}
    newest: int | None = None
    last: int | None = None  # bucket of the last row whose time was read: unreadable rows go with it
    for row in rows:
        plan, bucket = _plan(row, known, buckets, horizon)
        if bucket is None:
            if last is None:
                yield row
            else:
                held.setdefault(last, []).append(row)
            continue
        last = bucket
        if plan is not None:
            held.setdefault(bucket - horizon, []).append(plan)
        held.setdefault(bucket, []).append(row)
        if newest is None or bucket > newest:
            newest = bucket
            for old in sorted(b for b in held if b < newest - horizon):  # no later plan can be issued there
                yield from held.pop(old)
    for old in sorted(held):
        yield from held.pop(old)


def _plan(row: dict | bytes, known: tuple[str, ...], buckets: Buckets, horizon: int) -> tuple[dict | None, int | None]:
    """(the row's plan event, its bucket), or (None, None) when the row has no readable time."""
    if type(row) is not dict:
        return None, None
    try:
        ts = parse_ts(row.get("ts"))
    except InvalidEvent:
        return None, None
    bucket = buckets.index(ts)
    if row.get("type", "sale") not in ("sale", "click") or row.get("sku") is None:
        return None, bucket
    plan: dict = {"event_id": f"plan:{row.get('event_id')}", "type": "plan",
                  "ts": buckets.start_ms(bucket - horizon), "for": row["ts"]}
    if row.get("store") is not None:
        plan["store"] = row["store"]
    plan["sku"] = row["sku"]
    for name in known:
        if name in row:
            plan[name] = row[name]
        elif name == "event":
            plan["event"] = None
    return plan, bucket
