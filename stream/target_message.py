"""The stock-target contract (``tidecast.target/1``): one message per series and bucket close on
``<prefix>targets``, beside the forecast it came from.

The order-up-to level of a periodic-review policy (``lead_time`` buckets of lead time, a review every ``review``
buckets, at ``service_level``: the settings ``TIDECAST_LEAD_TIME``, ``TIDECAST_REVIEW`` and
``TIDECAST_SERVICE_LEVEL``, or a ``policy`` event's override; docs/decisions.md) is the service quantile of the
demand over the ``lead + review`` buckets of the protection period: tidecast's lead-time quantile at ``L =
lead + review`` (:mod:`tidecast.models.lead_time`, :mod:`tidecast.stream.stock_targets`). The message carries it
as ``order_up_to``, with every lead-time quantile of that sum (``protection``), where the policy came from
(``policy_from``), the ``forecast_id`` of the forecast published with it and, for a series whose stock position
was reported (an ``inventory`` event), that position and the ``order_quantity``.

>>> import numpy as np
>>> from tidecast.models.replenishment import Policy
>>> from tidecast.stream.forecast_message import ForecastBatch
>>> from tidecast.stream.stock_targets import stock_targets
>>> batch = ForecastBatch(bucket_seconds=86_400, origin_ms=1_767_571_200_000, quantiles=(0.1, 0.5, 0.9),
...                       model_version=3, issued_at_ms=1_767_571_260_000)
>>> lead = np.array([[[0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 6.0], [2.0, 5.0, 8.0, 9.5]]])  # L = 1..3
>>> stock = stock_targets(["all:A"], lead, (0.1, 0.5, 0.9, 0.95), Policy(2, 1, (0.95,)), {}, {})
>>> key, value = next(target_messages(batch, ["all:A"], stock))
>>> doc = orjson.loads(value)
>>> key, doc["order_up_to"], doc["protection"]["buckets"], doc["protection"]["values"], doc["policy_from"]
(b'all:A', 9.5, 3, [2.0, 5.0, 8.0, 9.5], 'settings')
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import orjson

from tidecast.stream.events import split_series
from tidecast.stream.forecast_message import ForecastBatch, forecast_id
from tidecast.stream.stock_targets import StockTargets
from tidecast.stream.timebuckets import to_iso

SCHEMA = "tidecast.target/1"


def target_messages(batch: ForecastBatch, series: Sequence[str],
                    stock: StockTargets) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` per series of the forecast ``batch``: its target from ``stock`` (see the module
    docstring)."""
    if len(stock.order_up_to) != len(series):
        raise ValueError(f"{len(series)} series but {len(stock.order_up_to)} stock targets")
    origin = to_iso(batch.origin_ms)
    shared = orjson.dumps({
        "bucket_seconds": batch.bucket_seconds,
        "origin": origin,
        "model_version": batch.model_version,
        "issued_at": to_iso(batch.issued_at_ms),
    })[1:-1]
    quantiles = orjson.dumps(list(stock.levels))
    values = np.round(stock.values, 2)
    up_to = np.round(stock.order_up_to, 2).tolist()
    lead_time, review, service = stock.lead_time.tolist(), stock.review.tolist(), stock.service.tolist()
    dumps, numpy = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    for i, name in enumerate(series):
        store, sku = split_series(name)
        head = {"schema": SCHEMA, "forecast_id": forecast_id(name, origin, batch.bucket_seconds, batch.lineage),
                "series": name, "store": store, "sku": sku, "order_up_to": up_to[i], "lead_time": lead_time[i],
                "review": review[i], "service_level": service[i], "policy_from": stock.source[i]}
        if i in stock.notes:
            head["policy_note"] = stock.notes[i]
        if stock.as_of_ms[i] >= 0:
            head["inventory"] = {"on_hand": float(stock.on_hand[i]), "on_order": float(stock.on_order[i]),
                                 "as_of": to_iso(int(stock.as_of_ms[i]))}
            # from the level as written, so that a reader recomputing it from the message gets the same
            head["order_quantity"] = round(max(0.0, up_to[i] - float(stock.on_hand[i]) - float(stock.on_order[i])), 2)
        body = dumps(head)
        yield name.encode(), b"".join((body[:-1], b",", shared, b',"protection":{"buckets":',
                                       str(lead_time[i] + review[i]).encode(), b',"quantiles":', quantiles,
                                       b',"values":', dumps(values[i], option=numpy), b"}}"))
