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
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from tidecast.stream.ingest import COUNTERS, IngestBatch, PartitionState
from tidecast.stream.windows import METRICS, add_rows, empty_row


@dataclass(slots=True)
class StoreStats:
    """Totals over all partitions, plus per ``topic:partition`` offsets and max event times."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    offsets: dict[str, int] = field(default_factory=dict)
    max_ts_ms: dict[str, int] = field(default_factory=dict)


class WindowStore(Protocol):
    def load_partition(self, topic: str, partition: int) -> PartitionState: ...

    def commit(self, batch: IngestBatch) -> bool: ...

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]: ...

    def read_bucket(self, bucket: int) -> dict[str, list[float]]: ...

    def stats(self) -> StoreStats: ...

    def max_event_times(self) -> dict[str, int]: ...

    def buckets(self) -> list[int]: ...


class MemoryWindowStore:
    """A :class:`WindowStore` in process memory, for unit tests and the backtest."""

    def __init__(self) -> None:
        # windows[partition][bucket][series] -> metric row
        self.windows: dict[int, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(dict))
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.counters: dict[tuple[str, int], dict[str, int]] = {}

    def load_partition(self, topic: str, partition: int) -> PartitionState:
        stored = self.partitions.get((topic, partition))
        if stored is None:
            return PartitionState()
        seen = {bucket: set(ids) for bucket, ids in stored.seen.items()}
        return PartitionState(stored.next_offset, stored.max_ts_ms, seen)

    def commit(self, batch: IngestBatch) -> bool:
        key = (batch.topic, batch.partition)
        stored = self.partitions.setdefault(key, PartitionState())
        if stored.next_offset != batch.expected_offset:
            return False
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
        if batch.trim_before is not None:
            for bucket in [b for b in windows if b < batch.trim_before]:
                del windows[bucket]
        stored.next_offset = batch.next_offset
        stored.max_ts_ms = batch.max_ts_ms
        counters = self.counters.setdefault(key, dict.fromkeys(COUNTERS, 0))
        for name, value in batch.counts.as_fields().items():
            counters[name] += value
        return True

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]:
        rows: dict[int, list[float]] = {}
        for buckets in self.windows.values():
            for bucket, by_series in buckets.items():
                row = by_series.get(series)
                if row is not None:
                    add_rows(rows.setdefault(bucket, empty_row()), row)
        return [(bucket, dict(zip(METRICS, rows[bucket], strict=True))) for bucket in sorted(rows)]

    def read_bucket(self, bucket: int) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for buckets in self.windows.values():
            for series, row in buckets.get(bucket, {}).items():
                add_rows(merged.setdefault(series, empty_row()), row)
        return merged

    def buckets(self) -> list[int]:
        """Retained bucket indices, oldest first."""
        return sorted({bucket for buckets in self.windows.values() for bucket in buckets})

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
        return result
