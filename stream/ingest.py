"""Ingest logic for one Kafka partition: validate, deduplicate, bucket, watermark, in one pure step.

A :class:`PartitionIngestor` turns a poll batch of one partition into a :class:`IngestBatch`: the window
deltas, the event ids to remember, the rejected messages with their reasons, the counters and the new
offset and watermark. A store applies a batch atomically (:meth:`WindowStore.commit`); only then does the
ingestor adopt the batch's state (:meth:`PartitionIngestor.adopt`). A batch that is never committed
leaves no trace, which is what makes crash-and-replay exact.

Lateness, drawn (lateness 2h, hourly buckets)::

    bucket 10       bucket 11       bucket 12
    [---------------)[---------------)[-----------
                                        ^ max event time 12:30
                     ^ watermark 10:30: bucket 10 is open until the watermark passes 11:00,
                                        so an event at 10:59 is accepted; once the watermark
                                        passes 11:00, an event for bucket 10 is late (DLQ).

>>> from tidecast.stream.timebuckets import Buckets
>>> ing = PartitionIngestor("sales", 0, Buckets(3600), lateness_ms=0, retention=48)
>>> b = ing.apply([Record(0, b'{"event_id":"a","type":"sale","ts":7200000,"sku":"A","qty":2}'),
...                Record(1, b'{"event_id":"a","type":"sale","ts":7200000,"sku":"A","qty":2}'),
...                Record(2, b'not json')])
>>> b.counts.ingested, b.counts.duplicates, b.counts.invalid, b.next_offset
(1, 1, 1, 3)
>>> b.rejects[0].reason[:14]
'not valid JSON'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from tidecast.stream.events import InvalidEvent, validate
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.windows import WindowDelta

LATE = "late"
"""The DLQ reason for an event whose bucket has already closed."""
COUNTERS: tuple[str, ...] = ("ingested", "duplicates", "late", "invalid", "dlq")
"""The per-partition counters, in the order the store's commit script reads them (``lua/commit_batch.lua``)."""


class Record(NamedTuple):
    """The part of a Kafka record the ingest needs; kafka-python's ConsumerRecord fits this shape."""

    offset: int
    value: bytes | None
    key: bytes | None = None


class RecordLike(Protocol):
    """What the ingest reads of a record (read-only)."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def key(self) -> bytes | None: ...


class Reject(NamedTuple):
    """A message refused by the ingest, bound for the DLQ."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass(slots=True)
class Counts:
    """How one batch's records were classified; every record lands in exactly one of these."""

    ingested: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0

    @property
    def dlq(self) -> int:
        return self.late + self.invalid

    def values(self) -> list[int]:
        """The counts in :data:`COUNTERS` order."""
        return [getattr(self, name) for name in COUNTERS]

    def as_fields(self) -> dict[str, int]:
        return dict(zip(COUNTERS, self.values(), strict=True))


@dataclass(slots=True)
class PartitionState:
    """What a store remembers about one partition, loaded when the partition is assigned."""

    next_offset: int | None = None
    max_ts_ms: int | None = None
    seen: dict[int, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class IngestBatch:
    """Everything one poll batch of one partition changes, applied by a store in one atomic step."""

    topic: str
    partition: int
    expected_offset: int | None
    next_offset: int
    max_ts_ms: int | None
    delta: WindowDelta
    new_seen: dict[int, list[str]]
    forget_seen: list[int]
    trim_before: int | None
    counts: Counts
    rejects: list[Reject]


class PartitionIngestor:
    """Pure per-partition ingest state machine (see the module docstring)."""

    def __init__(
        self,
        topic: str,
        partition: int,
        buckets: Buckets,
        lateness_ms: int,
        retention: int,
        state: PartitionState | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.buckets = buckets
        self.lateness_ms = lateness_ms
        self.retention = retention
        state = state or PartitionState()
        self.next_offset = state.next_offset
        self.max_ts_ms = state.max_ts_ms
        self.seen = state.seen

    @property
    def watermark_ms(self) -> int | None:
        return None if self.max_ts_ms is None else self.max_ts_ms - self.lateness_ms

    def open_from(self, max_ts_ms: int | None) -> int | None:
        """The oldest bucket still open for this partition when its max event time is ``max_ts_ms``."""
        if max_ts_ms is None:
            return None
        return self.buckets.index(max_ts_ms - self.lateness_ms)

    def _forget_and_trim(self, open_from: int) -> tuple[list[int], int]:
        """Dedup sets of buckets before ``open_from`` are forgotten; windows older than the retention trimmed."""
        return sorted(b for b in self.seen if b < open_from), open_from - self.retention

    def apply(self, records: Sequence[RecordLike]) -> IngestBatch:
        """Classify ``records`` (consecutive, one partition) without changing this ingestor's state."""
        bucket_of = self.buckets.index
        lateness = self.lateness_ms
        seen = self.seen
        new_seen: dict[int, list[str]] = {}
        delta = WindowDelta()
        add = delta.add
        counts = Counts()
        ingested = duplicates = 0
        rejects: list[Reject] = []
        max_ts = self.max_ts_ms
        open_from = self.open_from(max_ts)
        bucket_now = None  # the bucket of the previous event, and its id sets (events come in runs)
        batch_ids: set[str] = set()
        stored_ids: set[str] | tuple = ()
        batch_sets: dict[int, set[str]] = {}
        for record in records:
            try:
                event = validate(record.value)
            except InvalidEvent as exc:
                counts.invalid += 1
                rejects.append(Reject(self.topic, self.partition, record.offset, record.key, record.value, str(exc)))
                continue
            ts = event.ts_ms
            bucket = bucket_of(ts)
            if open_from is not None and bucket < open_from:
                counts.late += 1
                rejects.append(Reject(self.topic, self.partition, record.offset, record.key, record.value, LATE))
                continue
            if bucket != bucket_now:
                bucket_now = bucket
                known = batch_sets.get(bucket)
                if known is None:
                    known = batch_sets[bucket] = set()
                batch_ids = known
                stored_ids = seen.get(bucket, ())
            event_id = event.event_id
            if event_id in batch_ids or event_id in stored_ids:
                duplicates += 1
                continue
            batch_ids.add(event_id)
            add(event, bucket)
            ingested += 1
            if max_ts is None or ts > max_ts:
                max_ts = ts
                open_from = bucket_of(ts - lateness)
        counts.ingested, counts.duplicates = ingested, duplicates
        next_offset = records[-1].offset + 1 if records else (self.next_offset or 0)
        forget: list[int] = []
        trim_before = None
        if open_from is not None:
            forget = [b for b in (*seen, *batch_sets) if b < open_from]
            trim_before = open_from - self.retention
        for bucket, ids in batch_sets.items():
            if ids and bucket not in forget:
                new_seen[bucket] = list(ids)
        return IngestBatch(
            topic=self.topic,
            partition=self.partition,
            expected_offset=self.next_offset,
            next_offset=next_offset,
            max_ts_ms=max_ts,
            delta=delta,
            new_seen=new_seen,
            forget_seen=sorted(set(forget) & set(seen)),
            trim_before=trim_before,
            counts=counts,
            rejects=rejects,
        )

    def advance(self, max_ts_ms: int, position: int) -> IngestBatch | None:
        """An empty batch that moves an idle partition's max event time up to ``max_ts_ms``.

        Idle partitions must not hold back bucket closes forever; the ingest worker calls this for a
        partition that got no record for ``TIDECAST_IDLE_TIMEOUT`` with the max event time of all
        partitions. The move is committed like any batch, so events for the buckets it closes are late
        from then on, consistently across restarts. ``position`` is the consumer's position, used when
        nothing was ever committed for this partition. Returns None when there is nothing to move.
        """
        if self.max_ts_ms is not None and max_ts_ms <= self.max_ts_ms:
            return None
        open_from = self.buckets.index(max_ts_ms - self.lateness_ms)
        forget, trim_before = self._forget_and_trim(open_from)
        offset = self.next_offset if self.next_offset is not None else position
        return IngestBatch(
            topic=self.topic,
            partition=self.partition,
            expected_offset=self.next_offset,
            next_offset=offset,
            max_ts_ms=max_ts_ms,
            delta=WindowDelta(),
            new_seen={},
            forget_seen=forget,
            trim_before=trim_before,
            counts=Counts(),
            rejects=[],
        )

    def adopt(self, batch: IngestBatch) -> None:
        """Take on the state of a batch the store has committed."""
        self.next_offset = batch.next_offset
        self.max_ts_ms = batch.max_ts_ms
        for bucket in batch.forget_seen:
            self.seen.pop(bucket, None)
        for bucket, ids in batch.new_seen.items():
            self.seen.setdefault(bucket, set()).update(ids)
