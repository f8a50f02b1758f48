"""Running totals of one ingest worker process (the store holds the durable ones), for progress lines and
the metrics (:mod:`tidecast.metrics`): rejects by kind, and the latest timings, lags and watermarks.

>>> from tidecast.stream.ingest import PartitionIngestor, Record
>>> from tidecast.stream.timebuckets import Buckets
>>> batch = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30).apply([Record(0, b"{"), Record(1, b"[]")])
>>> progress = IngestProgress(); progress.add(batch)
>>> progress.records, progress.invalid, progress.ingested, dict(progress.rejected)
(2, 2, 0, {'invalid': 2})
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

from tidecast.stream.ingest import FUTURE, LATE, UNCLASSIFIABLE, IngestBatch

REJECT_KINDS = (LATE, FUTURE, "unclassifiable", "invalid")
"""What a DLQ reason is counted as: too late for its bucket, dated too far ahead, a record whose classification
raised, or invalid (not JSON, against the schema, a plan outside its range)."""


def reject_kind(reason: str) -> str:
    """The kind (one of :data:`REJECT_KINDS`) of a DLQ reason: a bounded label, unlike the reason itself.

    >>> reject_kind("late"), reject_kind("field 'qty' must be a number")
    ('late', 'invalid')
    """
    if reason in (LATE, FUTURE):
        return reason
    return "unclassifiable" if reason.startswith(UNCLASSIFIABLE) else "invalid"


@dataclass(slots=True)
class IngestProgress:
    """Running totals of this worker process (the store holds the durable ones)."""

    records: int = 0
    ingested: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0
    dlq_failed: int = 0
    """Rejects whose DLQ message Kafka refused for the record itself (too large, say): counted and skipped."""
    first_record_at: float | None = None
    last_commit_at: float | None = None
    rejected: Counter[str] = field(default_factory=Counter)
    """Records sent to the DLQ by :func:`reject_kind`."""
    batch_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """Seconds to classify and bucket each poll batch of a partition, not yet taken by the metrics."""
    commit_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """Seconds of each batch's atomic commit to Redis (the committer thread appends), not yet taken."""
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    """Records of each held partition not yet read: its high watermark minus the consumer's position."""
    watermark_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    """The newest event time ingested from each held partition (epoch milliseconds)."""

    def add(self, batch: IngestBatch) -> None:
        if self.first_record_at is None:
            self.first_record_at = time.monotonic()
        c = batch.counts
        self.records += c.ingested + c.duplicates + c.late + c.invalid
        self.ingested += c.ingested
        self.duplicates += c.duplicates
        self.late += c.late
        self.invalid += c.invalid
        self.rejected.update(reject_kind(r.reason) for r in batch.rejects)

    @property
    def busy_seconds(self) -> float:
        """From the first record polled to the last batch committed."""
        if self.first_record_at is None:
            return 0.0
        return (self.last_commit_at or time.monotonic()) - self.first_record_at

    @property
    def rate(self) -> float:
        """Records per second while busy."""
        return self.records / max(self.busy_seconds, 1e-9)
