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

With a wall clock (``now_ms``, a callable or a fixed value in epoch ms), events dated more than
``max_future_ms`` past it are rejected with reason ``future`` (counted as ``invalid``):

>>> ing = PartitionIngestor("sales", 0, Buckets(3600), 0, 48, now_ms=7_200_000, max_future_ms=0)
>>> ing.apply([Record(0, b'{"event_id":"z","type":"sale","ts":7200001,"sku":"A","qty":1}')]).rejects[0].reason
'future'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from tidecast.stream.events import DEFAULT_BOUNDS, TS_MAX_MS, Bounds, InvalidEvent, Plan, Standing, quote, validate
from tidecast.stream.plans import PlanEntry, keep_latest
from tidecast.stream.standing import StandingEntry
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.windows import WindowDelta

LATE = "late"
"""The DLQ reason for an event whose bucket has already closed."""
FUTURE = "future"
"""The DLQ reason for an event dated more than ``max_future_ms`` past the wall clock (counted as ``invalid``)."""
MAX_FUTURE_MS = 86_400_000
"""Default margin past the wall clock an event time may have (``TIDECAST_MAX_FUTURE``, 1d)."""
UNCLASSIFIABLE = "could not be classified"
"""The DLQ reason prefix for a record whose classification raised an unexpected error (counted as ``invalid``)."""
COUNTERS: tuple[str, ...] = ("ingested", "duplicates", "late", "invalid", "dlq")
"""The per-partition counters, in the order the store's commit script reads them (``lua/commit_batch.lua``)."""
REPAIR = ("run `tidecast rebuild --yes` (stop every ingest worker first) to re-read the retained Kafka history "
          "into fresh windows")
"""What to do about lost state or a gap, the end of :class:`StateLost`'s messages."""


class StateLost(RuntimeError):
    """The store's state of a partition cannot be trusted (keys lost, records deleted before they were ingested):
    ingest stops instead of re-reading or skipping silently. ``gap`` is the store's name of the gap
    (``<topic>@<offset>``) and ``records`` how many records it skipped, when known."""

    def __init__(self, message: str, gap: str | None = None, records: int = 0) -> None:
        super().__init__(message)
        self.gap = gap
        self.records = records


class OffsetGap(StateLost):
    """The first record of a freshly assigned partition is not the one at the stored offset.

    >>> str(OffsetGap("sales", 3, 100, 500)).split(": ")[0]
    'sales:3 starts at offset 500, not at the stored offset 100'
    """

    def __init__(self, topic: str, partition: int, expected: int, first: int) -> None:
        if first > expected:
            why = (f"records {expected} to {first - 1} ({first - expected:,}) were deleted from Kafka (retention) "
                   f"before they were ingested")
            allow = "; or set TIDECAST_ALLOW_GAPS=1 to count them as a gap and go on"
        else:
            why = "the log restarts below the stored offset (the topic was deleted and created again?)"
            allow = ""
        super().__init__(f"{topic}:{partition} starts at offset {first}, not at the stored offset {expected}: {why}. "
                         f"Ingest stopped: {REPAIR}{allow}",
                         gap=f"{topic}@{expected}", records=max(first - expected, 0))
        self.expected, self.first = expected, first


class RecordsDeleted(StateLost):
    """Kafka no longer holds the offset ingest reached in a partition (the consumer's fetch was out of range):
    retention, or a deletion, removed records before they were ingested; or the offset is past the log's end.

    >>> str(RecordsDeleted("sales", 3, 100, 500)).split(": ingest")[0]
    'sales:3: Kafka deleted records 100 to 499 (400) before they were ingested'
    >>> RecordsDeleted("sales", 3, 100, 500).gap, RecordsDeleted("sales", 3, 100, 500).records
    ('sales@100', 400)
    """

    def __init__(self, topic: str, partition: int, reached: int, log_start: int) -> None:
        if log_start > reached:
            why = (f"Kafka deleted records {reached} to {log_start - 1} ({log_start - reached:,}) before they were "
                   f"ingested: ingest reached offset {reached}, the log now starts at {log_start} (retention.ms or "
                   f"retention.bytes too short for a stopped or slow worker, or records deleted by hand)")
            allow = "; or set TIDECAST_ALLOW_GAPS=1 to count them as a gap and go on from the log start"
        else:
            why = (f"Kafka holds no offset {reached} although the log starts at {log_start}: the offset is past the "
                   f"log's end (the topic was deleted and created again?)")
            allow = ""
        super().__init__(f"{topic}:{partition}: {why}. Ingest stopped: {REPAIR}{allow}",
                         gap=f"{topic}@{reached}", records=max(log_start - reached, 0))
        self.reached, self.log_start = reached, log_start


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
    lost: str | None = None
    """Why the stored state cannot be trusted (see :func:`~tidecast.stream.window_store.classify`), or None."""


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
    gap: tuple[int, int] | None = None
    """(stored offset, first record offset) when the batch skips records deleted before they were ingested
    (only with ``allow_gaps``); the store counts it under ``<topic>@<stored offset>``."""
    plans: dict[tuple[int, str], PlanEntry] = field(default_factory=dict)
    """(planned bucket, target) -> the batch's last plan for it (:mod:`tidecast.stream.plans`)."""
    standing: dict[tuple[str, str], StandingEntry] = field(default_factory=dict)
    """(kind, target) -> the batch's last ``policy`` or ``inventory`` for it (:mod:`tidecast.stream.standing`)."""


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
        *,
        bounds: Bounds = DEFAULT_BOUNDS,
        now_ms: Callable[[], int] | int | None = None,
        max_future_ms: int = MAX_FUTURE_MS,
        allow_gaps: bool = False,
        plan_ahead: int | None = None,
    ) -> None:
        """``now_ms`` is the wall clock (epoch ms, a callable or a value); None means no future guard (offline
        replay on a simulated clock). ``bounds`` are the validator's numeric bounds. The first records after a
        stored offset (and after :meth:`expect_gap`) must start at it: otherwise :meth:`apply` raises
        :class:`OffsetGap`, or with ``allow_gaps`` (a forward gap only) marks the batch's ``gap``. Later batches
        are not checked: transactional control records and compaction leave legitimate holes in the offsets.
        A plan must be for a bucket 1 to ``plan_ahead`` buckets after the bucket it was issued in (default
        ``retention``), else it is rejected; its event time (watermark, lateness, dedup) is its issue time."""
        self.topic = topic
        self.partition = partition
        self.buckets = buckets
        self.lateness_ms = lateness_ms
        self.retention = retention
        state = state or PartitionState()
        self.next_offset = state.next_offset
        self.max_ts_ms = state.max_ts_ms
        self.seen = state.seen
        self.bounds = bounds
        self.now_ms = now_ms
        self.max_future_ms = max_future_ms
        self.allow_gaps = allow_gaps
        self.check_start = state.next_offset is not None
        self.plan_ahead = retention if plan_ahead is None else plan_ahead

    def future_limit_ms(self) -> int:
        """The latest event time accepted now: wall clock + ``max_future_ms`` (no limit without a clock)."""
        now = self.now_ms
        if now is None:
            return TS_MAX_MS
        return (now() if callable(now) else now) + self.max_future_ms

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

    def _gap(self, records: Sequence[RecordLike]) -> tuple[int, int] | None:
        """The gap before the first records after a stored offset, if any (raises :class:`OffsetGap` unless it
        is allowed)."""
        expected = self.next_offset
        if not (self.check_start and records and expected is not None and records[0].offset != expected):
            return None
        first = records[0].offset
        if first < expected or not self.allow_gaps:
            raise OffsetGap(self.topic, self.partition, expected, first)
        return expected, first

    def apply(self, records: Sequence[RecordLike]) -> IngestBatch:
        """Classify ``records`` (consecutive, one partition) without changing this ingestor's state."""
        gap = self._gap(records)
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
        plans: dict[tuple[int, str], PlanEntry] = {}
        standing: dict[tuple[str, str], StandingEntry] = {}
        bounds = self.bounds
        future_limit = self.future_limit_ms()
        reject = rejects.append
        topic, partition = self.topic, self.partition
        for record in records:
            try:  # zero-cost unless raised (3.11+): the hot path pays nothing for the guard
                event = validate(record.value, bounds)
                ts = event.ts_ms
                if ts > future_limit:
                    counts.invalid += 1
                    reject(Reject(topic, partition, record.offset, record.key, record.value, FUTURE))
                    continue
                bucket = bucket_of(ts)
                # late, unless a policy or an inventory: for no bucket, it holds from now however old its ts
                if open_from is not None and bucket < open_from and type(event) is not Standing:
                    counts.late += 1
                    reject(Reject(topic, partition, record.offset, record.key, record.value, LATE))
                    continue
                if bucket != bucket_now:
                    known = batch_sets.get(bucket)
                    if known is None:
                        known = batch_sets[bucket] = set()
                    bucket_now = bucket
                    batch_ids = known
                    stored_ids = seen.get(bucket, ())
                event_id = event.event_id
                if event_id in batch_ids or event_id in stored_ids:
                    duplicates += 1
                    continue
                if type(event) is Plan:
                    reason = self._plan(event, bucket, record.offset, plans)
                    if reason is not None:
                        counts.invalid += 1
                        reject(Reject(topic, partition, record.offset, record.key, record.value, reason))
                        continue
                elif type(event) is Standing:
                    keep_latest(standing, (event.kind, event.target),
                                StandingEntry(ts, record.offset, event.values, partition))
                else:
                    # a sale or a click; added before the id is remembered: if it raised, the record left no trace
                    add(event, bucket)  # type: ignore[arg-type]
                batch_ids.add(event_id)
                ingested += 1
                if max_ts is None or ts > max_ts:
                    max_ts = ts
                    open_from = bucket_of(ts - lateness)
            except InvalidEvent as exc:
                counts.invalid += 1
                reject(Reject(topic, partition, record.offset, record.key, record.value, str(exc)))
            except Exception as exc:  # a bug or an input nobody foresaw must not stop the partition for good
                counts.invalid += 1
                reason = f"{UNCLASSIFIABLE}: {type(exc).__name__}: {quote(str(exc))}"
                reject(Reject(topic, partition, record.offset, record.key, record.value, reason))
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
            gap=gap,
            plans=plans,
            standing=standing,
        )

    def _plan(self, plan: Plan, bucket: int, offset: int, plans: dict[tuple[int, str], PlanEntry]) -> str | None:
        """Keep ``plan`` (issued in ``bucket``) in ``plans`` if it is the latest for its target; or why not."""
        ahead = self.buckets.index(plan.for_ms) - bucket
        if not 0 < ahead <= self.plan_ahead:
            return (f"field 'for' must be 1 to {self.plan_ahead} buckets after the bucket of 'ts' (the issue time; "
                    f"TIDECAST_RETENTION), got {ahead}")
        keep_latest(plans, (bucket + ahead, plan.target), PlanEntry(plan.ts_ms, offset, plan.values, self.partition))
        return None

    def advance(self, max_ts_ms: int, position: int) -> IngestBatch | None:
        """An empty batch that moves an idle partition's max event time up to ``max_ts_ms``.

        Idle partitions must not hold back bucket closes forever; the ingest worker calls this for a
        partition that got no record for ``TIDECAST_IDLE_TIMEOUT`` with the max event time of all
        partitions. The move is committed like any batch, so events for the buckets it closes are late
        from then on, consistently across restarts. ``position`` is the consumer's position, used when
        nothing was ever committed for this partition. Returns None when there is nothing to move.

        With a wall clock, ``max_ts_ms`` is capped at the future limit (:meth:`future_limit_ms`): one partition's
        event time from the future (stored before the guard existed) must not close every partition's buckets.
        """
        max_ts_ms = min(max_ts_ms, self.future_limit_ms())
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

    def expect_gap(self) -> None:
        """Check the start of the next records again: Kafka deleted records past :attr:`next_offset` and the
        consumer was moved to the log start, so the next batch carries the gap (counted with it in one commit)
        or, without ``allow_gaps``, raises :class:`OffsetGap`. Nothing to check before anything was read."""
        self.check_start = self.next_offset is not None

    def adopt(self, batch: IngestBatch) -> None:
        """Take on the state of a batch the store has committed."""
        if batch.next_offset != batch.expected_offset:  # records were read: the start is checked
            self.check_start = False
        self.next_offset = batch.next_offset
        self.max_ts_ms = batch.max_ts_ms
        for bucket in batch.forget_seen:
            self.seen.pop(bucket, None)
        for bucket, ids in batch.new_seen.items():
            self.seen.setdefault(bucket, set()).update(ids)
