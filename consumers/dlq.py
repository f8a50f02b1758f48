"""The dead-letter queue message: a rejected input with its reason and where it came from.

>>> from tidecast.stream.ingest import Reject
>>> doc = orjson.loads(dlq_message(Reject("tidecast.sales", 3, 17, b"k", b"{oops", "not valid JSON"), 0))
>>> doc["source"], doc["payload_b64"], doc["rejected_at"]
({'topic': 'tidecast.sales', 'partition': 3, 'offset': 17}, 'e29vcHM=', '1970-01-01T00:00:00+00:00')

A payload longer than ``max_bytes`` (``TIDECAST_DLQ_MAX_BYTES``) is cut, and the message says so:

>>> doc = orjson.loads(dlq_message(Reject("tidecast.sales", 3, 18, None, b"x" * 5000, "empty"), 0, max_bytes=3))
>>> doc["payload_b64"], doc["truncated"], doc["payload_size"]
('eHh4', True, 5000)

A DLQ send that fails for its record alone (too large for the broker, say) is counted and skipped
(:class:`DlqAck`), so one record can never stall its partition; any other failure (the broker is gone) still
stops the worker:

>>> from kafka.future import Future
>>> class Refused(Future):
...     def get(self, timeout=None): raise MessageSizeTooLargeError("over 1 MB")
>>> progress = IngestProgress()
>>> DlqAck(Refused(), progress, ("sales", 0, 7)).get(timeout=1), progress.dlq_failed
(None, 1)
"""

from __future__ import annotations

import base64
import logging
import threading

import orjson
from kafka.errors import InvalidRecordError, MessageSizeTooLargeError, RecordListTooLargeError

from tidecast.config import DLQ_MAX_BYTES
from tidecast.consumers.committer import Ack
from tidecast.consumers.ingest_progress import IngestProgress
from tidecast.stream.ingest import Reject
from tidecast.stream.timebuckets import to_iso

log = logging.getLogger(__name__)

REASON_MAX_CHARS = 1000
"""A reason longer than this is cut (reasons quote short prefixes already; this bounds unforeseen ones)."""


def dlq_message(reject: Reject, now_ms: int, max_bytes: int = DLQ_MAX_BYTES) -> bytes:
    """The JSON value sent to ``<prefix>dlq`` for ``reject`` (schema in docs/events.md).

    The payload is the original value, byte for byte, up to ``max_bytes``; beyond that its first ``max_bytes``
    bytes with ``"truncated": true`` and ``"payload_size"`` (the original length in bytes).
    """
    value = reject.value or b""
    reason = reject.reason
    if len(reason) > REASON_MAX_CHARS:
        reason = reason[: REASON_MAX_CHARS - 1] + "…"
    doc: dict[str, object] = {
        "reason": reason,
        "source": {"topic": reject.topic, "partition": reject.partition, "offset": reject.offset},
        "payload_b64": base64.b64encode(value[:max_bytes]).decode("ascii"),
        "rejected_at": to_iso(now_ms),
    }
    if len(value) > max_bytes:
        doc["truncated"] = True
        doc["payload_size"] = len(value)
    return orjson.dumps(doc)


def dlq_key(reject: Reject, max_bytes: int = DLQ_MAX_BYTES) -> bytes | None:
    """The DLQ message's key: the original key, cut to ``max_bytes`` like the payload.

    >>> dlq_key(Reject("t", 0, 0, b"s1:A", None, "empty message")), dlq_key(Reject("t", 0, 0, b"k" * 9, None, "x"), 4)
    (b's1:A', b'kkkk')
    """
    key = reject.key
    return key if key is None or len(key) <= max_bytes else key[:max_bytes]


_RECORD_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError)
"""Kafka's refusals of one record (too large, invalid): retrying it would fail forever. Every other failure
(a time-out, a broker away) is not the record's fault and stops the worker as before."""


def record_error(exc: BaseException) -> bool:
    """True when a DLQ send failed because of its record alone (retrying cannot help)."""
    return isinstance(exc, _RECORD_ERRORS)


class DlqAck:
    """A DLQ send's acknowledgement for the committer: a record error is counted and skipped, not raised."""

    __slots__ = ("future", "progress", "source")
    _lock = threading.Lock()  # the committer thread counts while the worker thread reads

    def __init__(self, future: Ack | None, progress: IngestProgress, source: tuple[str, int, int],
                 error: BaseException | None = None) -> None:
        self.future, self.progress, self.source = future, progress, source
        if error is not None:
            self._skip(error)

    def get(self, timeout: float | None = None) -> object:
        if self.future is None:
            return None
        try:
            return self.future.get(timeout=timeout)
        except Exception as exc:
            if not record_error(exc):
                raise
            self._skip(exc)
            return None

    def _skip(self, exc: BaseException) -> None:
        with self._lock:
            self.progress.dlq_failed += 1
        topic, partition, offset = self.source
        log.warning("could not send the DLQ message for %s:%d@%d, skipped: %s", topic, partition, offset, exc)
