"""The window-store port and its in-memory implementation.

A window store keeps, per partition: the feature windows (per bucket and series, the seven metrics of
:mod:`tidecast.stream.windows`), the next offset to read, the max event time (the watermark's source),
the event ids seen in still-open buckets, and counters. :meth:`WindowStore.commit` applies a
:class:`~tidecast.stream.ingest.IngestBatch` atomically and only if the stored offset is the one the batch
was built on (a fence against a stale consumer); the Redis adapter does the same in one Lua call.

>>> from tidecast.stream.ingest import PartitionIngestor, Record
>>> from tidecast.stream.timebuckets import Buckets
>>> store = MemoryWindowStore()
>>> ing = PartitionIngestor("sales", 0, Buckets(3600), 0, 48, store.load_partition("sales", 0))
>>> batch = ing.apply([Record(0, b'{"event_id":"a","type":"sale","ts":0,"sku":"A","qty":2,"price":1.5}')])
>>> store.commit(batch), store.commit(batch)  # the second is fenced: the offset moved on
(True, False)
>>> store.series_window("all:A")
[(-96, {'units': 2, 'orders': 1, 'revenue': 3.0, 'returns': 0, 'views': 0, 'add_to_cart': 0, 'promo_orders': 0})]

Lost state: the first commit of a partition's topic also writes its epoch marker, so state that lost its
offset (or its marker) is told apart from a fresh partition when it is loaded (:func:`classify`):

>>> del store.partitions[("sales", 0)]  # the offset is gone, the counters and windows are not
>>> store.load_partition("sales", 0).lost[:53]
'sales:0: the stored state is incomplete: the offset i'
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tidecast.stream.ingest import COUNTERS, REPAIR, IngestBatch, PartitionState, StateLost
from tidecast.stream.plans import PlanEntry, keep_latest
from tidecast.stream.standing import StandingEntry, merge_standing
from tidecast.stream.windows import METRICS, add_rows, empty_row

Owned = Callable[[int], bool]
"""Which partition numbers a reader owns (a forecaster shard's :meth:`~tidecast.stream.shards.Shard.owns`)."""


@dataclass(slots=True)
class StoreStats:
    """Totals over all partitions, plus per ``topic:partition`` offsets and max event times."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    offsets: dict[str, int] = field(default_factory=dict)
    max_ts_ms: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    """Gaps detected (lost state, records deleted before they were ingested), each counted once."""


def classify(topic: str, partition: int, *, offset: bool, own: list[str], epoch: bool, windows: bool,
             others: bool, keys: str) -> str | None:
    """Why one topic-partition's stored state is lost, or None (fresh or consistent).

    ``offset``/``epoch``: its offset and epoch marker exist; ``own``: names of its other state that exists
    (max event time, counters, dedup sets, epoch marker, gaps); ``windows``: the partition's windows exist
    (all topics of a partition number share them); ``others``: another topic of the partition has an offset,
    which accounts for the windows; ``keys``: where the partition's keys are, for the message.

    >>> classify("sales", 0, offset=False, own=[], epoch=False, windows=False, others=False, keys="p{0}:*")
    >>> classify("sales", 0, offset=False, own=[], epoch=False, windows=True, others=True, keys="p{0}:*")
    >>> classify("sales", 0, offset=True, own=[], epoch=False, windows=True, others=False, keys="p{0}:*")[:73]
    'sales:0: the stored state is incomplete: the epoch marker is missing whil'
    """
    if not offset and own:
        what = f"the offset is missing while its {', '.join(own)} exist"
    elif not offset and windows and not others:
        what = "the offset is missing while the partition's windows exist"
    elif offset and not epoch and windows:
        what = "the epoch marker is missing while windows exist"
    else:
        return None
    return (f"{topic}:{partition}: the stored state is incomplete: {what} (keys were lost: eviction under "
            f"maxmemory, a partial restore, keys deleted by hand); reading the partition again from the beginning "
            f"would add its events twice. Ingest stopped: {REPAIR}, or delete the partition's keys ({keys}) to "
            f"re-read everything")


def no_state(topic: str, partition: int, expected: int) -> StateLost:
    """The commit of a batch built on ``expected`` found no stored offset at all: the store lost everything."""
    return StateLost(
        f"{topic}:{partition}: Redis holds no state for this partition although this worker committed up to "
        f"offset {expected}: Redis lost its data (FLUSHALL, a restart without persistence, eviction). "
        f"Ingest stopped: {REPAIR}",
        gap=f"{topic}@{expected}",
    )


class WindowStore(Protocol):
    def load_partition(self, topic: str, partition: int) -> PartitionState: ...

    def commit(self, batch: IngestBatch) -> bool: ...

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]: ...

    def read_bucket(self, bucket: int, owned: Owned | None = None) -> dict[str, list[float]]:
        """Bucket ``bucket``'s windows: series -> metric row, summed over the partitions (those ``owned``
        says yes to, when given: a forecaster shard's)."""
        ...

    def stats(self) -> StoreStats: ...

    def max_event_times(self) -> dict[str, int]: ...

    def buckets(self, owned: Owned | None = None) -> list[int]:
        """Retained bucket indices, oldest first (of the partitions ``owned`` says yes to, when given)."""
        ...

    def read_plans(self, first: int, last: int) -> dict[int, dict[str, PlanEntry]]:
        """Plans of buckets ``first .. last``: bucket -> target -> the latest plan over all partitions."""
        ...

    def read_standing(self, kind: str) -> dict[str, StandingEntry]:
        """Every target's latest ``kind`` (``policy`` or ``inventory``) over all partitions."""
        ...


def merge_plans(into: dict[int, dict[str, PlanEntry]], bucket: int, targets: dict[str, PlanEntry]) -> None:
    """Add one partition's plans of ``bucket`` to ``into``, the latest winning (a target in two partitions)."""
    merged = into.setdefault(bucket, {})
    for target, entry in targets.items():
        keep_latest(merged, target, entry)


class MemoryWindowStore:
    """A :class:`WindowStore` in process memory, for unit tests and the backtest."""

    def __init__(self) -> None:
        # windows[partition][bucket][series] -> metric row
        self.windows: dict[int, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(dict))
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.counters: dict[tuple[str, int], dict[str, int]] = {}
        self.epochs: set[tuple[str, int]] = set()
        self.gaps: dict[int, dict[str, int]] = defaultdict(dict)
        # plans[partition][bucket][target] -> the latest plan
        self.plans: dict[int, dict[int, dict[str, PlanEntry]]] = defaultdict(lambda: defaultdict(dict))
        # standing[partition][kind][target] -> the latest policy or inventory
        self.standing: dict[int, dict[str, dict[str, StandingEntry]]] = defaultdict(lambda: defaultdict(dict))

    def load_partition(self, topic: str, partition: int) -> PartitionState:
        key = (topic, partition)
        stored = self.partitions.get(key) or PartitionState()
        own = [name for name, present in (
            ("max event time", stored.max_ts_ms is not None), ("counters", key in self.counters),
            ("dedup sets", bool(stored.seen)), ("epoch marker", key in self.epochs),
            ("gaps", any(g.startswith(f"{topic}@") for g in self.gaps.get(partition, {}))),
        ) if present]
        others = any(p == partition and t != topic and state.next_offset is not None
                     for (t, p), state in self.partitions.items())
        lost = classify(topic, partition, offset=stored.next_offset is not None, own=own, epoch=key in self.epochs,
                        windows=bool(self.windows.get(partition)), others=others, keys=f"partition {partition}")
        seen = {bucket: set(ids) for bucket, ids in stored.seen.items()}
        return PartitionState(stored.next_offset, stored.max_ts_ms, seen, lost)

    def record_gap(self, partition: int, gap: str, records: int) -> None:
        """Remember a gap (``<topic>@<offset>`` -> records skipped, 0 when unknown) in ``stats().gaps``."""
        self.gaps[partition][gap] = records

    def commit(self, batch: IngestBatch) -> bool:
        key = (batch.topic, batch.partition)
        stored = self.partitions.setdefault(key, PartitionState())
        if stored.next_offset != batch.expected_offset:
            if stored.next_offset is None and batch.expected_offset is not None:
                self.record_gap(batch.partition, f"{batch.topic}@{batch.expected_offset}", 0)  # a restart sees it
                raise no_state(batch.topic, batch.partition, batch.expected_offset)
            return False
        if stored.next_offset is None:
            self.epochs.add(key)
        if batch.gap is not None:
            self.gaps[batch.partition][f"{batch.topic}@{batch.gap[0]}"] = batch.gap[1] - batch.gap[0]
        windows = self.windows[batch.partition]
        for (bucket, series), row in batch.delta.rows.items():
            target = windows[bucket].get(series)
            if target is None:
                windows[bucket][series] = list(row)
            else:
                add_rows(target, row)
        for bucket in batch.forget_seen:
            stored.seen.pop(bucket, None)
        for bucket, ids in batch.new_seen.items():
            stored.seen.setdefault(bucket, set()).update(ids)
        plans = self.plans[batch.partition]
        for (bucket, name), entry in batch.plans.items():
            keep_latest(plans[bucket], name, entry)
        standing = self.standing[batch.partition]
        for (kind, name), value in batch.standing.items():
            keep_latest(standing[kind], name, value)
        if batch.trim_before is not None:
            for bucket in [b for b in windows if b < batch.trim_before]:
                del windows[bucket]
            for bucket in [b for b in plans if b < batch.trim_before]:
                del plans[bucket]
        stored.next_offset = batch.next_offset
        stored.max_ts_ms = batch.max_ts_ms
        counters = self.counters.setdefault(key, dict.fromkeys(COUNTERS, 0))
        for name, count in batch.counts.as_fields().items():
            counters[name] += count
        return True

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]:
        rows: dict[int, list[float]] = {}
        for buckets in self.windows.values():
            for bucket, by_series in buckets.items():
                row = by_series.get(series)
                if row is not None:
                    add_rows(rows.setdefault(bucket, empty_row()), row)
        return [(bucket, dict(zip(METRICS, rows[bucket], strict=True))) for bucket in sorted(rows)]

    def read_bucket(self, bucket: int, owned: Owned | None = None) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for partition, buckets in self.windows.items():
            if owned is not None and not owned(partition):
                continue
            for series, row in buckets.get(bucket, {}).items():
                add_rows(merged.setdefault(series, empty_row()), row)
        return merged

    def buckets(self, owned: Owned | None = None) -> list[int]:
        """Retained bucket indices, oldest first."""
        return sorted({bucket for partition, buckets in self.windows.items() for bucket in buckets
                       if owned is None or owned(partition)})

    def read_plans(self, first: int, last: int) -> dict[int, dict[str, PlanEntry]]:
        """Plans of buckets ``first .. last`` (see :class:`WindowStore`); the caller must not change them."""
        holding = [by_bucket for by_bucket in self.plans.values() if by_bucket]
        if len(holding) == 1:  # one partition (the backtest): nothing to merge
            return {bucket: targets for bucket, targets in holding[0].items() if first <= bucket <= last and targets}
        merged: dict[int, dict[str, PlanEntry]] = {}
        for by_bucket in self.plans.values():
            for bucket, targets in by_bucket.items():
                if first <= bucket <= last and targets:
                    merge_plans(merged, bucket, targets)
        return merged

    def read_standing(self, kind: str) -> dict[str, StandingEntry]:
        """Every target's latest ``kind`` over all partitions (see :class:`WindowStore`)."""
        merged: dict[str, StandingEntry] = {}
        for by_kind in self.standing.values():
            merge_standing(merged, by_kind.get(kind, {}))
        return merged

    def max_event_times(self) -> dict[str, int]:
        """``topic:partition`` -> max event time (ms) of every partition that has one."""
        return {
            f"{topic}:{partition}": state.max_ts_ms
            for (topic, partition), state in self.partitions.items()
            if state.max_ts_ms is not None
        }

    def stats(self) -> StoreStats:
        result = StoreStats()
        for (topic, partition), counters in self.counters.items():
            for name, value in counters.items():
                result.counters[name] += value
            state = self.partitions[(topic, partition)]
            result.offsets[f"{topic}:{partition}"] = state.next_offset or 0
            if state.max_ts_ms is not None:
                result.max_ts_ms[f"{topic}:{partition}"] = state.max_ts_ms
        result.gaps = sum(len(gaps) for gaps in self.gaps.values())
        return result
