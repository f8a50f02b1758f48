"""Running totals of one ingest worker process (the store holds the durable ones), for progress lines.

>>> from tidecast.stream.ingest import PartitionIngestor, Record
>>> from tidecast.stream.timebuckets import Buckets
>>> batch = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30).apply([Record(0, b"{"), Record(1, b"[]")])
>>> progress = IngestProgress(); progress.add(batch)
>>> progress.records, progress.invalid, progress.ingested
(2, 2, 0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tidecast.stream.ingest import IngestBatch


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

    def add(self, batch: IngestBatch) -> None:
        if self.first_record_at is None:
            self.first_record_at = time.monotonic()
        c = batch.counts
        self.records += c.ingested + c.duplicates + c.late + c.invalid
        self.ingested += c.ingested
        self.duplicates += c.duplicates
        self.late += c.late
        self.invalid += c.invalid

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
