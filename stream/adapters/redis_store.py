"""The Redis window store: the live implementation of :class:`~tidecast.stream.window_store.WindowStore`.

Key layout (``P`` = ``<topic prefix>{<partition>}:``, so one partition's keys share a Redis Cluster slot)::

    P off                   hash   topic -> next offset to read
    P epoch                 hash   topic -> Redis time (s) of the topic-partition's first commit (its epoch marker)
    P gaps                  hash   <topic>@<stored offset> -> records skipped (0: unknown), one field per gap
    P maxts                 hash   topic -> max event time seen (epoch ms); watermark = it - lateness
    P stats:<topic>         hash   ingested, duplicates, late, invalid, dlq
    P buckets               zset   bucket indices that hold windows (for retention trimming)
    P w:<bucket>:<metric>   hash   series -> value, one hash per bucket and metric
    P seen:<topic>:<bucket> set    event ids of a still-open bucket (deduplication)
    P plans                 zset   bucket indices that hold plans (for trimming and reading)
    P plan:<bucket>         hash   target (store:sku or store) -> [issued ms, offset, promo, price, open, event]
    P standing:policy       hash   target (store:sku or store) -> [issued ms, offset, lead_time, review, service_level]
    P standing:inventory    hash   series -> [issued ms, offset, on_hand, on_order]

A batch is applied by one Lua script call (``lua/commit_batch.lua``) that first checks the stored offset,
so a consumer that lost its partition cannot write over its successor. Redis does not undo a script's writes
when a later command of it fails, so the script checks the whole batch before writing (and refuses a bad one
with an error, writing nothing), and :meth:`RedisWindowStore.commit_args` checks it before sending: window
values finite and within :data:`METRIC_LIMIT`, offsets and times integers within :data:`EXACT_INT`, buckets
within :data:`BUCKET_LIMIT`.

On assignment :meth:`RedisWindowStore.load_partition` classifies a topic-partition's state (fresh, consistent or
lost: :func:`~tidecast.stream.window_store.classify`); a commit that finds no stored offset although the batch
was built on one raises :class:`~tidecast.stream.ingest.StateLost` (Redis lost everything), not a fence.
:func:`rebuild` deletes a prefix's partition state so ingest reads the retained Kafka history again.

>>> RedisWindowStore.partition_prefix("tidecast.", 3)
'tidecast.{3}:'
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import orjson

from tidecast.stream import standing
from tidecast.stream.adapters.redis_clients import RedisClient
from tidecast.stream.events import STANDING_KINDS
from tidecast.stream.ingest import COUNTERS, IngestBatch, PartitionState
from tidecast.stream.plans import PlanEntry, from_json, to_json
from tidecast.stream.standing import StandingEntry, merge_standing
from tidecast.stream.window_store import Owned, StoreStats, classify, merge_plans, no_state
from tidecast.stream.windows import METRICS, REVENUE, add_rows, empty_row

METRIC_LIMIT = 1e15
"""Largest magnitude of one count in a batch row (units, orders, returns, views, carts, promo orders): far from
overflowing ``HINCRBYFLOAT`` sums, and integer sums stay exact (below 2^53) for billions of batches."""
REVENUE_LIMIT = 1e20
"""Largest magnitude of a row's revenue, a float sum: above what validated events can add up to in one batch
(``TIDECAST_MAX_QTY`` x ``TIDECAST_MAX_PRICE`` is at most 1e13 a line; a limit as tight as the counts' would let
a hundred such lines stall a partition), and far from overflowing."""
LIMITS: tuple[float, ...] = tuple(REVENUE_LIMIT if m == REVENUE else METRIC_LIMIT for m in range(len(METRICS)))
EXACT_INT = 2**53 - 1
"""Largest offset, event time (ms) or count a batch may carry: the script's JSON decoder reads numbers as
doubles."""
BUCKET_LIMIT = 10**14
"""Largest magnitude of a bucket index: the script writes buckets into key names with 14 digits."""

_COMMIT_LUA = resources.files("tidecast.stream.adapters").joinpath("lua/commit_batch.lua").read_text()


class RedisWindowStore:
    """Window store on Redis (or valkey); ``prefix`` is the topic prefix, e.g. ``tidecast.``."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        # Any: redis-py's hints cover decoding and raw clients at once; this one returns bytes
        self.client: Any = client
        self.prefix = prefix
        self._commit = client.register_script(_COMMIT_LUA)
        self._partition_key = re.compile(re.escape(prefix) + r"\{(\d+)\}:(?:off|gaps)$")

    @staticmethod
    def partition_prefix(prefix: str, partition: int) -> str:
        return f"{prefix}{{{partition}}}:"

    def _p(self, partition: int) -> str:
        return self.partition_prefix(self.prefix, partition)

    def load_partition(self, topic: str, partition: int) -> PartitionState:
        p = self._p(partition)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(p + "off")
        pipe.hget(p + "maxts", topic)
        pipe.hget(p + "epoch", topic)
        pipe.exists(f"{p}stats:{topic}")
        pipe.hkeys(p + "gaps")
        pipe.zcard(p + "buckets")
        offsets, max_ts, epoch, stats, gaps, windows = pipe.execute()
        offset = offsets.get(topic.encode())
        seen: dict[int, set[str]] = {}
        seen_prefix = f"{p}seen:{topic}:"
        for key in self.client.scan_iter(match=glob_escape(seen_prefix) + "*", count=1000):
            bucket = int(key.decode()[len(seen_prefix):])
            seen[bucket] = {member.decode() for member in self.client.smembers(key)}
        own = [name for name, present in (
            ("max event time", max_ts is not None), ("counters", bool(stats)), ("dedup sets", bool(seen)),
            ("epoch marker", epoch is not None), ("gaps", any(g.startswith(f"{topic}@".encode()) for g in gaps)),
        ) if present]
        lost = classify(topic, partition, offset=offset is not None, own=own, epoch=epoch is not None,
                        windows=windows > 0, others=any(t != topic.encode() for t in offsets), keys=p + "*")
        return PartitionState(
            next_offset=None if offset is None else int(offset),
            max_ts_ms=None if max_ts is None else int(max_ts),
            seen=seen,
            lost=lost,
        )

    def commit(self, batch: IngestBatch) -> bool:
        applied = self._commit(keys=[self._p(batch.partition) + "off"], args=self.commit_args(batch))
        if applied == -1 and batch.expected_offset is not None:
            lost = no_state(batch.topic, batch.partition, batch.expected_offset)
            self.record_gap(batch.partition, f"{batch.topic}@{batch.expected_offset}", 0)  # a restart sees it
            raise lost
        return applied == 1

    def record_gap(self, partition: int, gap: str, records: int) -> None:
        """Remember a gap (``<topic>@<offset>`` -> records skipped, 0 when unknown) in ``stats().gaps``."""
        self.client.hset(self._p(partition) + "gaps", gap, records)

    def commit_args(self, batch: IngestBatch) -> list:
        """The argument list of ``commit_batch.lua``: prefix, topic, expected offset, the batch as JSON.

        Raises ValueError, naming the partition and offset, for a batch the script would refuse (see the
        module docstring), so a bad batch fails here instead of in Redis.
        """
        problem = _batch_problem(batch)
        payload = {
            "next": batch.next_offset,
            "max_ts": batch.max_ts_ms,
            "trim": batch.trim_before,
            "counts": batch.counts.values(),
            "rows": [[bucket, series, *row] for (bucket, series), row in batch.delta.rows.items()],
            "forget": batch.forget_seen,
            "seen": list(batch.new_seen.items()),
        }
        if batch.gap is not None:
            payload["gap"] = list(batch.gap)
        if batch.plans and problem is None:
            problem = _plans_problem(batch)
            payload["plans"] = [[bucket, target, entry.issued_ms, entry.offset, orjson.dumps(to_json(entry)).decode()]
                                for (bucket, target), entry in batch.plans.items()]
        if batch.standing and problem is None:
            problem = _standing_problem(batch)
            payload["standing"] = [[kind, target, entry.issued_ms, entry.offset,
                                    orjson.dumps(standing.to_json(entry)).decode()]
                                   for (kind, target), entry in batch.standing.items()]
        if problem is None:
            try:
                body = orjson.dumps(payload)
            except orjson.JSONEncodeError as exc:
                problem = f"cannot be written as JSON ({exc})"
        if problem is not None:
            raise ValueError(
                f"refusing to commit the batch of {batch.topic}:{batch.partition} built on offset "
                f"{batch.expected_offset} (next {batch.next_offset!r}): {problem}"
            )
        expected = "" if batch.expected_offset is None else batch.expected_offset
        return [self._p(batch.partition), batch.topic, expected, body]

    def partitions(self, owned: Owned | None = None) -> list[int]:
        """Partitions that have ever committed a batch or recorded a gap (and that ``owned`` says yes to)."""
        found = set()
        for suffix in ("off", "gaps"):
            for key in self.client.scan_iter(match=glob_escape(self.prefix) + "{*}:" + suffix, count=1000):
                match = self._partition_key.match(key.decode())
                if match:
                    found.add(int(match.group(1)))
        return sorted(p for p in found if owned is None or owned(p))

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]:
        rows: dict[int, list[float]] = {}
        for partition in self.partitions():
            p = self._p(partition)
            buckets = [int(b) for b in self.client.zrange(p + "buckets", 0, -1)]
            pipe = self.client.pipeline(transaction=False)
            for bucket in buckets:
                for metric in METRICS:
                    pipe.hget(f"{p}w:{bucket}:{metric}", series)
            values = pipe.execute()
            for n, bucket in enumerate(buckets):
                chunk = values[n * len(METRICS):(n + 1) * len(METRICS)]
                if any(v is not None for v in chunk):
                    add_rows(rows.setdefault(bucket, empty_row()), [_number(v) for v in chunk])
        return [(bucket, dict(zip(METRICS, rows[bucket], strict=True))) for bucket in sorted(rows)]

    def read_bucket(self, bucket: int, owned: Owned | None = None) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        pipe = self.client.pipeline(transaction=False)
        for partition in self.partitions(owned):
            for metric in METRICS:
                pipe.hgetall(f"{self._p(partition)}w:{bucket}:{metric}")
        results = pipe.execute()
        width = len(METRICS)
        for start in range(0, len(results), width):
            columns = results[start:start + width]
            names = set(columns[0]).union(*columns[1:])
            for key in names:
                row = [float(column.get(key, 0)) for column in columns]
                name = key.decode()
                if name in merged:  # the same series in two partitions (producers with other partitioners)
                    add_rows(merged[name], row)
                else:
                    merged[name] = row
        return merged

    def buckets(self, owned: Owned | None = None) -> list[int]:
        """Retained bucket indices, oldest first."""
        pipe = self.client.pipeline(transaction=False)
        for partition in self.partitions(owned):
            pipe.zrange(self._p(partition) + "buckets", 0, -1)
        return sorted({int(b) for members in pipe.execute() for b in members})

    def read_plans(self, first: int, last: int) -> dict[int, dict[str, PlanEntry]]:
        """Plans of buckets ``first .. last``: bucket -> target -> the latest plan over all partitions."""
        partitions = self.partitions()
        pipe = self.client.pipeline(transaction=False)
        for partition in partitions:
            pipe.zrangebyscore(self._p(partition) + "plans", first, last)
        wanted = [(partition, int(b)) for partition, members in zip(partitions, pipe.execute(), strict=True)
                  for b in members]
        pipe = self.client.pipeline(transaction=False)
        for partition, bucket in wanted:
            pipe.hgetall(f"{self._p(partition)}plan:{bucket}")
        merged: dict[int, dict[str, PlanEntry]] = {}
        for (partition, bucket), found in zip(wanted, pipe.execute(), strict=True):
            targets = {target.decode(): from_json(orjson.loads(raw), partition) for target, raw in found.items()}
            merge_plans(merged, bucket, targets)
        return merged

    def read_standing(self, kind: str) -> dict[str, StandingEntry]:
        """Every target's latest ``kind`` (``policy`` or ``inventory``) over all partitions."""
        partitions = self.partitions()
        pipe = self.client.pipeline(transaction=False)
        for partition in partitions:
            pipe.hgetall(f"{self._p(partition)}standing:{kind}")
        merged: dict[str, StandingEntry] = {}
        for partition, found in zip(partitions, pipe.execute(), strict=True):
            merge_standing(merged, {target.decode(): standing.from_json(kind, orjson.loads(raw), partition)
                                    for target, raw in found.items()})
        return merged

    def max_event_times(self) -> dict[str, int]:
        """``topic:partition`` -> max event time (ms) of every partition that has one."""
        partitions = self.partitions()
        pipe = self.client.pipeline(transaction=False)
        for partition in partitions:
            pipe.hgetall(self._p(partition) + "maxts")
        return {
            f"{topic.decode()}:{partition}": int(ms)
            for partition, values in zip(partitions, pipe.execute(), strict=True)
            for topic, ms in values.items()
        }

    def stats(self) -> StoreStats:
        result = StoreStats()
        for partition in self.partitions():
            p = self._p(partition)
            offsets = self.client.hgetall(p + "off")
            max_ts = self.client.hgetall(p + "maxts")
            for topic_raw, offset in offsets.items():
                topic = topic_raw.decode()
                name = f"{topic}:{partition}"
                result.offsets[name] = int(offset)
                if topic_raw in max_ts:
                    result.max_ts_ms[name] = int(max_ts[topic_raw])
                for counter, value in self.client.hgetall(f"{p}stats:{topic}").items():
                    if counter.decode() in COUNTERS:
                        result.counters[counter.decode()] += int(value)
            result.gaps += self.client.hlen(p + "gaps")
        return result


class RedisCheckpoints:
    """A :class:`~tidecast.stream.ports.CheckpointStore` in one Redis key per forecaster.

    >>> RedisCheckpoints.key_for("tidecast.", "all")
    'tidecast.checkpoint:forecaster:all'
    """

    def __init__(self, client: RedisClient, prefix: str, name: str = "all") -> None:
        self.client: Any = client
        self.key = self.key_for(prefix, name)

    @staticmethod
    def key_for(prefix: str, name: str) -> str:
        return f"{prefix}checkpoint:forecaster:{name}"

    def load(self) -> bytes | None:
        return self.client.get(self.key)

    def save(self, blob: bytes) -> None:
        self.client.set(self.key, blob)


@contextlib.contextmanager
def scratch_stores(client: RedisClient, prefix: str) -> Iterator[Callable[[], RedisWindowStore]]:
    """A factory of empty window stores on ``client``, each under ``prefix`` plus a random tag; a store's keys
    are deleted when the next one is made and on the way out, with the client (the backtest's ``--store redis``).
    """
    prefixes: list[str] = []

    def new_store() -> RedisWindowStore:
        for old in prefixes:
            delete_keys(client, old)
        prefixes.append(f"{prefix}{uuid.uuid4().hex[:8]}.")
        return RedisWindowStore(client, prefixes[-1])

    try:
        yield new_store
    finally:
        for old in prefixes:
            delete_keys(client, old)
        client.close()


def delete_keys(client: RedisClient, prefix: str) -> int:
    """Delete every key starting with ``prefix`` (glob characters in it are escaped); returns how many.

    The backtest's ``--store redis`` runs under a key prefix of its own and deletes it afterwards.
    """
    return _delete_matching(client, glob_escape(prefix) + "*")


def rebuild(client: RedisClient, prefix: str) -> int:
    """Delete every partition key under ``prefix`` (``<prefix>{<partition>}:*``: windows, offsets, epoch markers,
    counters, dedup sets, gaps) so ingest reads the retained Kafka history again; returns how many keys.

    Other keys under the prefix (the forecaster's checkpoint and lease) and other prefixes are left alone.
    """
    pattern = re.compile(re.escape(prefix) + r"\{\d+\}:")
    return _delete_matching(client, glob_escape(prefix) + "{*}:*", lambda key: bool(pattern.match(key)))


def _delete_matching(client: RedisClient, glob: str, keep: Callable[[str], bool] = lambda key: True) -> int:
    """Delete the keys that match ``glob`` (and ``keep``), a thousand at a time; returns how many."""
    redis_client: Any = client  # see RedisWindowStore.__init__
    deleted = 0
    batch: list[bytes] = []
    for key in redis_client.scan_iter(match=glob, count=1000):
        if keep(key.decode(errors="replace")):
            batch.append(key)
        if len(batch) >= 1000:
            deleted += redis_client.delete(*batch)
            batch = []
    if batch:
        deleted += redis_client.delete(*batch)
    return deleted


def _batch_problem(batch: IngestBatch) -> str | None:
    """Why ``commit_batch.lua`` would refuse ``batch``, or None; one pass over the rows."""
    first = batch.expected_offset if batch.expected_offset is not None else 0
    if not _is_int(batch.next_offset, first, EXACT_INT):
        return f"'next' offset {batch.next_offset!r} is not an integer from {first} to 2^53-1"
    if batch.max_ts_ms is not None and not _is_int(batch.max_ts_ms, -EXACT_INT, EXACT_INT):
        return f"max event time {batch.max_ts_ms!r} is not an integer within +-(2^53-1)"
    if batch.trim_before is not None and not _is_int(batch.trim_before, -BUCKET_LIMIT, BUCKET_LIMIT):
        return f"trim bucket {batch.trim_before!r} is not an integer within +-1e14"
    gap = batch.gap
    if gap is not None and not (len(gap) == 2 and _is_int(gap[0], 0, EXACT_INT)
                                and _is_int(gap[1], gap[0] + 1, EXACT_INT)):
        return f"gap {batch.gap!r} is not (stored offset, first offset) with the first past the stored"
    for name, count in zip(COUNTERS, batch.counts.values(), strict=True):
        if not _is_int(count, 0, EXACT_INT):
            return f"count {name}={count!r} is not an integer from 0 to 2^53-1"
    for bucket in (*batch.forget_seen, *batch.new_seen):
        if not _is_int(bucket, -BUCKET_LIMIT, BUCKET_LIMIT):
            return f"seen bucket {bucket!r} is not an integer within +-1e14"
    for (bucket, series), row in batch.delta.rows.items():
        if not (_is_int(bucket, -BUCKET_LIMIT, BUCKET_LIMIT) and type(series) is str and len(row) == len(METRICS)):
            return f"row {(bucket, series)!r} is not (bucket within +-1e14, series string) -> {len(METRICS)} values"
        try:
            for value, high in zip(row, LIMITS, strict=True):
                if not -high <= value <= high:  # also False for NaN
                    return _value_problem(bucket, series, row)
        except TypeError:
            return _value_problem(bucket, series, row)
    return None


def _plans_problem(batch: IngestBatch) -> str | None:
    """Why the batch's plans would be refused by the script, or None."""
    for (bucket, target), entry in batch.plans.items():
        if not (_is_int(bucket, -BUCKET_LIMIT, BUCKET_LIMIT) and type(target) is str
                and _is_int(entry.issued_ms, -EXACT_INT, EXACT_INT) and _is_int(entry.offset, 0, EXACT_INT)):
            return f"plan {(bucket, target)!r} is not (bucket within +-1e14, target) with an integer time and offset"
    return None


def _standing_problem(batch: IngestBatch) -> str | None:
    """Why the batch's policies and inventories would be refused by the script, or None."""
    for (kind, target), entry in batch.standing.items():
        if not (kind in STANDING_KINDS and type(target) is str and _is_int(entry.issued_ms, -EXACT_INT, EXACT_INT)
                and _is_int(entry.offset, 0, EXACT_INT)):
            return f"{kind} of {target!r} is not (policy or inventory, target) with an integer time and offset"
    return None


def _value_problem(bucket: int, series: str, row: list[float]) -> str:
    for metric, value, high in zip(METRICS, row, LIMITS, strict=True):
        if type(value) not in (int, float) or not -high <= value <= high:
            return (f"{metric} of series {series!r} in bucket {bucket} is {value!r}, not a finite number "
                    f"within +-{high:g}")
    raise AssertionError("no bad value")  # pragma: no cover


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _number(raw: bytes | None) -> float:
    if raw is None:
        return 0
    value = float(raw)
    return int(value) if value.is_integer() else value


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``SCAN MATCH`` pattern.

    >>> print(glob_escape("t.{3}:*"))
    t.\\{3\\}:\\*
    """
    return re.sub(r"([*?\[\]\\{}])", r"\\\1", text)
