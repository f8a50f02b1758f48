"""A background thread that applies batches to the window store in order, while the consumer polls on.

The ingest worker builds batch *n+1* while Redis applies batch *n*: the two run on different cores.
Before a batch is committed its dead-letter messages must be acknowledged by Kafka, so a crash can
duplicate a DLQ message (same source partition and offset) but never lose one. With ``acks`` (an
:class:`~tidecast.stream.adapters.retry.Outage` of the broker) an acknowledgement that does not come within
:data:`ACK_WAIT` seconds is waited for again, up to the outage timeout.

>>> from tidecast.stream.window_store import MemoryWindowStore
>>> c = Committer(MemoryWindowStore()); c.drain(); c.close()
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from tidecast.stream.adapters.retry import Outage
from tidecast.stream.ingest import IngestBatch
from tidecast.stream.window_store import WindowStore

ACK_WAIT = 5.0
"""Seconds of one wait for a DLQ acknowledgement; with an outage of the broker, waits repeat up to its timeout."""


class Fenced(RuntimeError):
    """The store's offset for a partition moved under us: another consumer owns it now."""


class Ack(Protocol):
    def get(self, timeout: float | None = None) -> object: ...


class Committer:
    """Commits batches in submission order on one thread; errors surface on the caller's next call."""

    def __init__(
        self,
        store: WindowStore,
        depth: int = 4,
        on_commit: Callable[[IngestBatch, float], None] | None = None,
        acks: Outage | None = None,
    ) -> None:
        self.store = store
        self.on_commit = on_commit
        self.acks = acks
        self._queue: queue.Queue[tuple[IngestBatch, Sequence[Ack]] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tidecast-committer", daemon=True)
        self._thread.start()

    def submit(self, batch: IngestBatch, acks: Sequence[Ack] = ()) -> None:
        self._raise_if_failed()
        self._queue.put((batch, acks))

    def drain(self) -> None:
        """Block until every submitted batch is committed (or raise the first failure)."""
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _wait(self, ack: Ack) -> None:
        if self.acks is None:
            ack.get(timeout=30)
        else:
            self.acks.call(lambda: ack.get(timeout=ACK_WAIT))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is not None:
                    continue  # after a failure nothing more may be committed: the next one would skip data
                batch, acks = item
                for ack in acks:
                    self._wait(ack)
                started = time.perf_counter()
                if not self.store.commit(batch):
                    raise Fenced(f"{batch.topic}:{batch.partition} was committed by another consumer")
                if self.on_commit is not None:  # with the seconds the store's commit took
                    self.on_commit(batch, time.perf_counter() - started)
            except BaseException as exc:
                self._error = exc
            finally:
                self._queue.task_done()
