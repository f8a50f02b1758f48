"""The forecast contract (``tidecast.forecast/1``): one message per series and bucket close.

``forecast_id`` is a UUIDv5 of (lineage, series, origin, bucket size), so a consumer can drop a duplicate that
a crash-restart re-published, and keeps doing so when Redis lost the forecaster's checkpoint (the model
version starts again at 0 then, the lineage does not: it names the forecaster, e.g.
``tidecast.forecaster:all`` for the topic prefix ``tidecast.``). ``model_version`` stays in the message.
``origin`` is the start of the first forecast bucket. ``mean`` (one value per step) is the forecast mean, the
point for sums and squared-error metrics; the median is in ``values``. ``plan`` (when the model takes plans)
is a short hash of the planned values the forecast assumed (:func:`tidecast.stream.plans.plan_hash`), null
when nothing was planned for its buckets: two forecasts with the same hash assumed the same plan.
``explain`` (with ``TIDECAST_EXPLAIN``) splits the published median, averaged over the horizon, into the
reference's median, each input group's contribution, the path's residual and the calibration's offset
(:func:`explain_fields`, :mod:`tidecast.models.explain`).

>>> import numpy as np
>>> batch = ForecastBatch(bucket_seconds=86_400, origin_ms=1_767_571_200_000, quantiles=(0.1, 0.5, 0.9),
...                       model_version=3, issued_at_ms=1_767_571_260_000)
>>> values = np.array([[[0.0, 1.0, 2.5], [0.0, 1.0, 3.0]]], dtype=np.float32)
>>> key, value = next(batch.messages(["all:A"], values, np.array([[1.25, 1.5]])))
>>> doc = orjson.loads(value)
>>> key, doc["values"], doc["mean"], doc["origin"]
(b'all:A', [[0.0, 1.0, 2.5], [0.0, 1.0, 3.0]], [1.25, 1.5], '2026-01-05T00:00:00+00:00')
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from tidecast.stream.events import split_series
from tidecast.stream.timebuckets import to_iso

SCHEMA = "tidecast.forecast/1"
_NAMESPACE = uuid.UUID("6f1c2a8e-2b1d-5c6e-9a57-7d1f0b3c4e21")


EXPLAIN_STEPS = 16
"""Points on the integration path of a published explanation: its residual stays under 0.1% of the median
(``tidecast explain`` uses 32); the cost grows with them (docs/benchmarks.md, "Published explanations")."""

DEFAULT_LINEAGE = "tidecast.forecaster:all"
"""The lineage of the default forecaster under the default topic prefix (see the module docstring)."""


def forecast_id(series: str, origin_iso: str, bucket_seconds: int, lineage: str = DEFAULT_LINEAGE) -> str:
    """Deterministic id, a UUIDv5: the same (lineage, series, origin, bucket size) always gives the same id.

    >>> origin = "2026-01-05T00:00:00+00:00"
    >>> name = f"{DEFAULT_LINEAGE}|all:A|{origin}|86400"
    >>> forecast_id("all:A", origin, 86_400) == str(uuid.uuid5(_NAMESPACE, name))
    True
    """
    name = f"{lineage}|{series}|{origin_iso}|{bucket_seconds}"
    digest = bytearray(hashlib.sha1(_NAMESPACE.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class ForecastBatch:
    """What every message of one bucket close shares."""

    bucket_seconds: int
    origin_ms: int
    quantiles: tuple[float, ...]
    model_version: int
    issued_at_ms: int
    lineage: str = DEFAULT_LINEAGE

    def messages(self, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                 plans: Sequence[str | None] | None = None,
                 explanations: Sequence[dict] | None = None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` per series; ``values`` is [S, H, Q], non-negative and monotone along Q; ``mean``
        is [S, H], non-negative; ``plans`` (optional): per series the hash of the plan its forecast assumed,
        written as ``plan`` (null: no plan known); ``explanations`` (optional): per series its ``explain``
        field (:func:`explain_fields`)."""
        origin = to_iso(self.origin_ms)
        shared = orjson.dumps({
            "bucket_seconds": self.bucket_seconds,
            "origin": origin,
            "quantiles": list(self.quantiles),
            "model_version": self.model_version,
            "issued_at": to_iso(self.issued_at_ms),
        })[1:-1]  # the fields every message of this close shares, serialised once
        rounded = np.round(np.asarray(values, np.float64), 4)
        means = np.round(np.asarray(mean, np.float64), 2)  # 0.01 units: short messages, ample for demand
        if not len(rounded) == len(means) == len(series):
            raise ValueError(f"{len(series)} series but {len(rounded)} forecasts and {len(means)} means")
        dumps, numpy = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
        if plans is not None and len(plans) != len(series):
            raise ValueError(f"{len(series)} series but {len(plans)} plan hashes")
        if explanations is not None and len(explanations) != len(series):
            raise ValueError(f"{len(series)} series but {len(explanations)} explanations")
        for n, (name, row, row_mean) in enumerate(zip(series, rounded, means, strict=True)):
            store, sku = split_series(name)
            fid = forecast_id(name, origin, self.bucket_seconds, self.lineage)
            head = dumps({"schema": SCHEMA, "forecast_id": fid, "series": name, "store": store, "sku": sku})
            tail = b"}" if plans is None else b',"plan":' + dumps(plans[n]) + b"}"
            if explanations is not None:
                tail = b',"explain":' + dumps(explanations[n]) + tail
            yield name.encode(), b"".join((head[:-1], b",", shared, b',"values":', dumps(row, option=numpy),
                                           b',"mean":', dumps(row_mean, option=numpy), tail))


def explain_fields(found: Sequence, values: np.ndarray, median: int) -> list[dict]:
    """The ``explain`` field of each series from the network's explanations ``found`` (one per row of the
    published quantiles ``values`` [S, H, Q], whose median is at index ``median``), in units per bucket
    averaged over the horizon, rounded to 0.001: ``median`` (as published) = ``reference`` + the sum of
    ``contributions`` + ``residual`` + ``calibration`` (the published median less the network's: the
    calibration's offsets and the bounds and rounding of what is published), the residual taking the rounding.

    >>> from types import SimpleNamespace as Found
    >>> e = Found(median=4.0, reference=3.0, contributions={"recent sales": 0.75, "calendar": 0.2}, residual=0.05)
    >>> field = explain_fields([e], np.array([[[1.0, 4.5, 6.0], [1.0, 4.5, 7.0]]]), 1)[0]
    >>> field["median"], field["reference"], field["contributions"]["calendar"], field["calibration"]
    (4.5, 3.0, 0.2, 0.5)
    """
    published = np.asarray(values, np.float64)[:, :, median].mean(axis=1)
    if len(found) != len(published):
        raise ValueError(f"{len(found)} explanations for {len(published)} forecasts")
    out = []
    for e, p in zip(found, published, strict=True):
        said, reference, calibration = round(float(p), 3), round(e.reference, 3), round(float(p) - e.median, 3)
        contributions = {group: round(v, 3) for group, v in e.contributions.items()}
        # the residual takes the rounding, so that the published terms add up to the published median
        residual = round(said - reference - sum(contributions.values()) - calibration, 6)
        out.append({"median": said, "reference": reference, "contributions": contributions, "residual": residual,
                    "calibration": calibration})
    return out
