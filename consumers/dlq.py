"""The dead-letter queue message: a rejected input with its reason and where it came from.

>>> from tidecast.stream.ingest import Reject
>>> doc = orjson.loads(dlq_message(Reject("tidecast.sales", 3, 17, b"k", b"{oops", "not valid JSON"), 0))
>>> doc["source"], doc["payload_b64"], doc["rejected_at"]
({'topic': 'tidecast.sales', 'partition': 3, 'offset': 17}, 'e29vcHM=', '1970-01-01T00:00:00+00:00')
"""

from __future__ import annotations

import base64

import orjson

from tidecast.stream.ingest import Reject
from tidecast.stream.timebuckets import to_iso


def dlq_message(reject: Reject, now_ms: int) -> bytes:
    """The JSON value sent to ``<prefix>dlq`` for ``reject`` (schema in docs/events.md)."""
    return orjson.dumps(
        {
            "reason": reject.reason,
            "source": {"topic": reject.topic, "partition": reject.partition, "offset": reject.offset},
            "payload_b64": base64.b64encode(reject.value or b"").decode("ascii"),
            "rejected_at": to_iso(now_ms),
        }
    )
