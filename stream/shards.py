"""Forecaster shards: ``tidecast forecast --shard I/N`` closes buckets for the series of its partitions only.

The input partitions are dealt to the shards by number: shard ``I`` of ``N`` owns partition ``p`` when
``p % N == I`` (a partition number covers that partition of every input topic, like the ingest workers'
split). Events are keyed by series (``store:sku``), and Kafka's default partitioner puts a key in partition
``murmur2(key) % partitions`` of every topic, so a series lives in one partition and so in one shard
(:meth:`Shard.of_series` computes it without a broker).

A shard reads the windows of its own partitions only (:class:`ShardView`), but every shard still waits for
the watermarks of *all* input partitions before it closes a bucket and reads the plans of all partitions (a
store's plan is keyed by the store, so it may sit in another shard's partition): a bucket closes for every
shard on the same watermarks, with the same plans, as it would for one forecaster, and N shards publish one
forecast per (series, origin) between them, with the ids one forecaster would give (the lineage does not
name the shard). What a shard decides from its own windows stays its own: it starts at the oldest bucket
its partitions hold, and holds on a run of empty buckets (``TIDECAST_MAX_EMPTY``) when its own series are
quiet, so ``--allow-empty-buckets`` is given to the shard that holds.

Each shard has its own checkpoint and lease (``<prefix>checkpoint:forecaster:shard-I-of-N``), and so its
own model, trained on its own series: the model is split, not shared. What that costs in accuracy is
measured by ``tidecast backtest --shards N`` (:class:`~tidecast.stream.sharded_learner.ShardedLearner`).

>>> shard = Shard.parse("1/2")
>>> shard.name, [p for p in range(6) if shard.owns(p)]
('shard-1-of-2', [1, 3, 5])
>>> Shard().name, Shard().owns(7)
('all', True)
>>> kafka_partition(b"s1:A", 12)  # where kafka-python's default partitioner sends the key
4
"""

from __future__ import annotations

from dataclasses import dataclass

from tidecast.stream.ingest import IngestBatch, PartitionState
from tidecast.stream.plans import PlanEntry
from tidecast.stream.standing import StandingEntry
from tidecast.stream.window_store import Owned, StoreStats, WindowStore

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit MurmurHash2 of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``, seed
    0x9747b28c), as an unsigned int: the hash its default partitioner, and kafka-python's, take of a key.

    >>> murmur2(b"21"), murmur2(b"")
    (3321034988, 275646681)
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail:
        rest = length - tail
        if tail >= 3:
            h ^= data[rest + 2] << 16
        if tail >= 2:
            h ^= data[rest + 1] << 8
        h ^= data[rest]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` in a topic of ``partitions`` partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (``Shard()``: the one forecaster that owns everything)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int) and isinstance(self.index, int) and 0 <= self.index < self.count):
            raise ValueError(f"a shard is I/N with 0 <= I < N, got {self.index!r}/{self.count!r}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (e.g. ``"0/2"``), with a message that says what is wrong.

        >>> Shard.parse("2/2")
        Traceback (most recent call last):
        ...
        ValueError: --shard '2/2': I must be from 0 to N-1 (shards are numbered from 0)
        """
        index, slash, count = text.strip().partition("/")
        if not (slash and index.strip().isdecimal() and count.strip().isdecimal()):
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/2 for the first of two shards")
        i, n = int(index), int(count)
        if n < 1:
            raise ValueError(f"--shard {text!r}: N must be at least 1")
        if i >= n:
            raise ValueError(f"--shard {text!r}: I must be from 0 to N-1 (shards are numbered from 0)")
        return cls(i, n)

    @property
    def name(self) -> str:
        """The checkpoint's name: ``all`` for the only forecaster, ``shard-I-of-N`` otherwise."""
        return "all" if self.count == 1 else f"shard-{self.index}-of-{self.count}"

    def owns(self, partition: int) -> bool:
        return partition % self.count == self.index

    def of_series(self, series: str, partitions: int) -> int:
        """The shard that forecasts ``series`` (``store:sku``) when the inputs have ``partitions`` partitions.

        >>> Shard(0, 2).of_series("s1:A", 12)  # partition 4
        0
        """
        return kafka_partition(series.encode(), partitions) % self.count


class ShardView:
    """A :class:`~tidecast.stream.window_store.WindowStore` whose bucket reads (:meth:`read_bucket`,
    :meth:`buckets`) see the windows of ``shard``'s partitions only; watermarks, plans, offsets, counters and
    one series' windows (:meth:`series_window`) are those of every partition (see the module docstring).

    >>> from tidecast.stream.window_store import MemoryWindowStore
    >>> store = MemoryWindowStore()
    >>> store.windows[0][5]["s:A"] = [1.0] * 7; store.windows[1][5]["s:B"] = [2.0] * 7
    >>> sorted(ShardView(store, Shard(1, 2)).read_bucket(5)), sorted(store.read_bucket(5))
    (['s:B'], ['s:A', 's:B'])
    """

    def __init__(self, store: WindowStore, shard: Shard) -> None:
        self.store = store
        self.shard = shard

    def read_bucket(self, bucket: int, owned: Owned | None = None) -> dict[str, list[float]]:
        return self.store.read_bucket(bucket, self._owned(owned))

    def buckets(self, owned: Owned | None = None) -> list[int]:
        return self.store.buckets(self._owned(owned))

    def _owned(self, owned: Owned | None) -> Owned:
        if owned is None:
            return self.shard.owns
        return lambda partition: self.shard.owns(partition) and owned(partition)

    def max_event_times(self) -> dict[str, int]:
        return self.store.max_event_times()

    def read_plans(self, first: int, last: int) -> dict[int, dict[str, PlanEntry]]:
        return self.store.read_plans(first, last)

    def read_standing(self, kind: str) -> dict[str, StandingEntry]:
        return self.store.read_standing(kind)

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]:
        return self.store.series_window(series)

    def load_partition(self, topic: str, partition: int) -> PartitionState:
        return self.store.load_partition(topic, partition)

    def commit(self, batch: IngestBatch) -> bool:
        return self.store.commit(batch)

    def stats(self) -> StoreStats:
        return self.store.stats()
