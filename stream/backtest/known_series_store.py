"""The window store the backtest's forecaster reads: panel zeros added, new series in a fixed order.

:class:`KnownSeriesStore` wraps any window store (memory, or Redis injected by the command) and is how panel
zeros (rows with ``qty == 0``, see :mod:`tidecast.stream.backtest.file_chunks`) reach the forecaster: its
``read_bucket`` adds a zero row for every series registered as an observed zero of that bucket (so the
panel registers the series and counts it active), and it hands new series over in sorted order, so the
panel's series order, the index space every model is scored in, does not depend on a store's hash order.

>>> from tidecast.stream.window_store import MemoryWindowStore
>>> store = KnownSeriesStore(MemoryWindowStore())
>>> store.register(7, ["all:B", "all:A"])
>>> store.buckets(), store.read_bucket(7)
([7], {'all:A': (0, 0, 0, 0, 0, 0, 0), 'all:B': (0, 0, 0, 0, 0, 0, 0)})
"""

from __future__ import annotations

from collections.abc import Iterable

from tidecast.stream.ingest import IngestBatch, PartitionState
from tidecast.stream.plans import PlanEntry
from tidecast.stream.standing import StandingEntry
from tidecast.stream.window_store import Owned, StoreStats, WindowStore
from tidecast.stream.windows import empty_row

_ZERO_ROW: list[float] = tuple(empty_row())  # type: ignore[assignment]


class KnownSeriesStore:
    """A :class:`WindowStore` wrapper that adds panel zeros and fixes the order of new series (see above)."""

    def __init__(self, inner: WindowStore) -> None:
        self.inner = inner
        self.zeros: dict[int, set[str]] = {}
        self.known: set[str] = set()
        self.registered = 0

    def register(self, bucket: int, series: Iterable[str]) -> None:
        """Record ``series`` as observed (with 0 units unless events say more) in ``bucket``."""
        names = self.zeros.setdefault(bucket, set())
        before = len(names)
        names.update(series)
        self.registered += len(names) - before

    def read_bucket(self, bucket: int, owned: Owned | None = None) -> dict[str, list[float]]:
        rows = self.inner.read_bucket(bucket, owned)
        zero = _ZERO_ROW
        for name in self.zeros.pop(bucket, ()):
            if name not in rows:
                rows[name] = zero  # shared and immutable: the panel only copies rows into its array
        for old in [b for b in self.zeros if b < bucket]:  # registered too late to be read: never happens in order
            del self.zeros[old]
        known = self.known
        new = [name for name in rows if name not in known]
        if not new:
            return rows
        known.update(new)
        return {name: rows[name] for name in sorted(rows)}

    def buckets(self, owned: Owned | None = None) -> list[int]:
        return sorted(set(self.inner.buckets(owned)) | set(self.zeros))

    def load_partition(self, topic: str, partition: int) -> PartitionState:
        return self.inner.load_partition(topic, partition)

    def commit(self, batch: IngestBatch) -> bool:
        return self.inner.commit(batch)

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]:
        return self.inner.series_window(series)

    def stats(self) -> StoreStats:
        return self.inner.stats()

    def max_event_times(self) -> dict[str, int]:
        return self.inner.max_event_times()

    def read_plans(self, first: int, last: int) -> dict[int, dict[str, PlanEntry]]:
        return self.inner.read_plans(first, last)

    def read_standing(self, kind: str) -> dict[str, StandingEntry]:
        return self.inner.read_standing(kind)
