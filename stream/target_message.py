"""The stock-target contract (``tidecast.target/1``): one message per series and bucket close on
``<prefix>targets``, beside the forecast it came from.

The order-up-to level of a periodic-review policy (``TIDECAST_LEAD_TIME`` buckets of lead time, a review every
``TIDECAST_REVIEW`` buckets, at ``TIDECAST_SERVICE_LEVEL``; docs/decisions.md) is the service quantile of the
demand over the ``lead + review`` buckets of the protection period: tidecast's lead-time quantile at ``L =
lead + review`` (:mod:`tidecast.models.lead_time`). The message carries it as ``order_up_to``, with every
lead-time quantile of that sum (``protection``), and the ``forecast_id`` of the forecast published with it.

>>> import numpy as np
>>> from tidecast.models.replenishment import Policy
>>> from tidecast.stream.forecast_message import ForecastBatch
>>> batch = ForecastBatch(bucket_seconds=86_400, origin_ms=1_767_571_200_000, quantiles=(0.1, 0.5, 0.9),
...                       model_version=3, issued_at_ms=1_767_571_260_000)
>>> lead = np.array([[[0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 6.0], [2.0, 5.0, 8.0, 9.5]]])  # L = 1..3
>>> key, value = next(target_messages(batch, ["all:A"], lead, (0.1, 0.5, 0.9, 0.95), Policy(2, 1, (0.95,))))
>>> doc = orjson.loads(value)
>>> key, doc["order_up_to"], doc["protection"]["buckets"], doc["protection"]["values"]
(b'all:A', 9.5, 3, [2.0, 5.0, 8.0, 9.5])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import orjson

from tidecast.models.replenishment import Policy
from tidecast.stream.events import split_series
from tidecast.stream.forecast_message import ForecastBatch, forecast_id
from tidecast.stream.timebuckets import to_iso

SCHEMA = "tidecast.target/1"


def service_index(levels: Sequence[float], policy: Policy) -> int:
    """The index of the policy's (first) service level among the lead-time ``levels``; ValueError when the model
    does not learn that level.

    >>> service_index((0.1, 0.5, 0.9, 0.95), Policy(services=(0.95,)))
    3
    """
    service = policy.services[0]
    for k, level in enumerate(levels):
        if abs(level - service) < 1e-9:
            return k
    raise ValueError(f"the model learns lead-time quantiles at {', '.join(f'{v:g}' for v in levels)}, not at the "
                     f"service level {service:g}")


def target_messages(batch: ForecastBatch, series: Sequence[str], lead: np.ndarray, levels: Sequence[float],
                    policy: Policy) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` per series: its order-up-to level from ``lead`` [S, H, QL], the lead-time quantiles at
    ``levels`` of the series forecast in ``batch`` (see the module docstring)."""
    if len(lead) != len(series):
        raise ValueError(f"{len(series)} series but {len(lead)} lead-time forecasts")
    at, span = service_index(levels, policy), policy.protection
    if not 1 <= span <= lead.shape[1]:
        raise ValueError(f"lead + review ({span} buckets) must be within the horizon ({lead.shape[1]})")
    origin = to_iso(batch.origin_ms)
    shared = orjson.dumps({
        "bucket_seconds": batch.bucket_seconds,
        "origin": origin,
        "model_version": batch.model_version,
        "issued_at": to_iso(batch.issued_at_ms),
        "lead_time": policy.lead,
        "review": policy.review,
        "service_level": policy.services[0],
    })[1:-1]
    sums = np.round(np.asarray(lead[:, span - 1], np.float64), 2)
    quantiles = orjson.dumps(list(levels))
    dumps, numpy = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    for name, row in zip(series, sums, strict=True):
        store, sku = split_series(name)
        head = dumps({"schema": SCHEMA, "forecast_id": forecast_id(name, origin, batch.bucket_seconds, batch.lineage),
                      "series": name, "store": store, "sku": sku, "order_up_to": float(row[at])})
        yield name.encode(), b"".join((head[:-1], b",", shared, b',"protection":{"buckets":', str(span).encode(),
                                       b',"quantiles":', quantiles, b',"values":', dumps(row, option=numpy), b"}}"))
