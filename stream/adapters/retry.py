"""Riding out a server outage: retry a call with capped exponential backoff for up to ``TIDECAST_OUTAGE_TIMEOUT``.

An :class:`Outage` watches one server (Redis, the Kafka broker). A call that fails with one of its transient
errors (a refused connection, a time-out) is retried after 0.1 s, 0.2 s, 0.4 s, ... at most 5 s apart, for up to
the outage timeout; then it raises :class:`OutageError` naming the server, the time and the last error. One log
line (a warning, on stderr) says when an outage starts and one when the server answers again, however many calls
were waiting.

:class:`RetryingStore` is a window store whose calls ride out Redis outages, and whose commit stays exactly
once across them: a commit retried after a lost connection may have landed the first time, and then the fence
of the Lua script refuses the retry; the store reads the stored offset and, when it is the batch's next offset,
reports success instead of a fenced commit.

>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise ConnectionError("refused")
...     return "answered"
>>> outage = Outage("Redis", timeout=60, errors=(ConnectionError,), sleep=lambda s: None)
>>> outage.call(flaky), len(calls), outage.down
('answered', 3, False)
>>> def refused():
...     raise ConnectionError("refused")
>>> Outage("Redis", timeout=0, errors=(ConnectionError,)).call(refused)
Traceback (most recent call last):
...
tidecast.stream.adapters.retry.OutageError: Redis unreachable for 0s (TIDECAST_OUTAGE_TIMEOUT): refused
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from tidecast.config import ServiceError
from tidecast.stream.ingest import IngestBatch, PartitionState
from tidecast.stream.plans import PlanEntry
from tidecast.stream.standing import StandingEntry
from tidecast.stream.window_store import Owned, StoreStats, WindowStore

log = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError,
    redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError, redis.exceptions.RedisClusterException,
)
"""Redis failures that say nothing about the request: the server is away, restarting or paused; on a Redis
Cluster also a cluster that is down (a master lost, a failover under way), a slot that is moving or not
covered, and no node reachable at all (redis-py's ``RedisClusterException``: "Redis Cluster cannot be
connected", raised while it reloads the slot map; tidecast sends no command that spans slots, the other
reason for it)."""
FIRST_DELAY = 0.1
"""Seconds before the first retry: a dropped connection usually reconnects at once."""
MAX_DELAY = 5.0
"""The backoff's cap: a server that comes back is noticed within 5 s, and retries stay rare while it is down."""


class OutageError(ServiceError):
    """A server stayed unreachable for longer than the outage timeout (the CLI prints it and exits 1)."""


class Outage:
    """Retries calls to one server (``what``) through outages of up to ``timeout`` seconds; thread-safe."""

    def __init__(
        self,
        what: str,
        timeout: float,
        errors: tuple[type[BaseException], ...],
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.what, self.timeout, self.errors = what, timeout, errors
        self.first_delay, self.max_delay = first_delay, max_delay
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._since: float | None = None

    @property
    def down(self) -> bool:
        """Whether an outage is under way (a call failed and none has succeeded since)."""
        return self._since is not None

    def call(self, fn: Callable[[], T], on_error: Callable[[BaseException], None] | None = None) -> T:
        """``fn()``, retried while it raises one of the transient errors, for up to the timeout (then
        :class:`OutageError`); ``on_error`` sees each transient error first."""
        delay, deadline = self.first_delay, None
        while True:
            try:
                result = fn()
            except self.errors as exc:
                if on_error is not None:
                    on_error(exc)
                now = self.clock()
                self._started(exc, now)
                deadline = now + self.timeout if deadline is None else deadline
                if now >= deadline:
                    raise OutageError(
                        f"{self.what} unreachable for {self.timeout:g}s (TIDECAST_OUTAGE_TIMEOUT): {exc}"
                    ) from exc
                self.sleep(min(delay, deadline - now))
                delay = min(delay * 2, self.max_delay)
                continue
            self._ended()
            return result

    def _started(self, exc: BaseException, now: float) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = now
        log.warning("%s unreachable (%s); retrying for up to %gs (TIDECAST_OUTAGE_TIMEOUT)", self.what, exc,
                    self.timeout)

    def _ended(self) -> None:
        if self._since is None:  # the common case: no lock on the hot path
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("%s answers again after %.1fs", self.what, self.clock() - since)


class RetryingStore:
    """A :class:`~tidecast.stream.window_store.WindowStore` whose calls ride out outages of its server.

    Other attributes of the wrapped store are passed through unchanged (not retried).
    """

    def __init__(self, store: WindowStore, outage: Outage) -> None:
        self.store = store
        self.outage = outage

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def commit(self, batch: IngestBatch) -> bool:
        """Commit ``batch``; a retry after a transient error that the fence refuses counts as success when the
        stored offset is the batch's next offset (the first attempt landed)."""
        failed: list[BaseException] = []
        if self.outage.call(lambda: self.store.commit(batch), on_error=failed.append):
            return True
        if not failed:
            return False
        stored = self.load_partition(batch.topic, batch.partition).next_offset
        if stored is not None and stored == batch.next_offset:
            log.info("%s:%d: the commit up to %d had landed before the connection dropped", batch.topic,
                     batch.partition, stored)
            return True
        return False

    def load_partition(self, topic: str, partition: int) -> PartitionState:
        return self.outage.call(lambda: self.store.load_partition(topic, partition))

    def max_event_times(self) -> dict[str, int]:
        return self.outage.call(self.store.max_event_times)

    def series_window(self, series: str) -> list[tuple[int, dict[str, float]]]:
        return self.outage.call(lambda: self.store.series_window(series))

    def read_bucket(self, bucket: int, owned: Owned | None = None) -> dict[str, list[float]]:
        return self.outage.call(lambda: self.store.read_bucket(bucket, owned))

    def stats(self) -> StoreStats:
        return self.outage.call(self.store.stats)

    def buckets(self, owned: Owned | None = None) -> list[int]:
        return self.outage.call(lambda: self.store.buckets(owned))

    def read_plans(self, first: int, last: int) -> dict[int, dict[str, PlanEntry]]:
        return self.outage.call(lambda: self.store.read_plans(first, last))

    def read_standing(self, kind: str) -> dict[str, StandingEntry]:
        return self.outage.call(lambda: self.store.read_standing(kind))
