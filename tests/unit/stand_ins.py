"""Stand-ins for the servers, for unit tests without them: the live forecaster's (``tidecast.live.build``) and
the ingest worker's Kafka clients (:func:`offline_worker`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import pytest

from tidecast.config import Settings
from tidecast.consumers import ingest_worker
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.stream.ownership import MemoryMembership
from tidecast.stream.window_store import WindowStore


class NoProducer:
    """A DLQ producer that is never used."""

    def __init__(self, **config: object) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


class AssignedConsumer:
    """The part of a Kafka consumer that the worker's membership drives: the topics' partitions (``TOPICS``:
    topic -> partition numbers; other topics do not exist) and the assignment."""

    TOPICS: ClassVar[dict[str, set[int]]] = {}

    def __init__(self, **config: object) -> None:
        self.config = config
        self.assigned: set[Any] = set()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.TOPICS.get(topic)

    def assign(self, partitions: list[Any]) -> None:
        self.assigned = set(partitions)

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def commit_async(self, offsets: object) -> None:
        pass

    def close(self, autocommit: bool = False) -> None:
        pass


def offline_worker(monkeypatch: pytest.MonkeyPatch, consumer: type, settings: Settings, store: WindowStore,
                   producer: type = NoProducer) -> IngestWorker:
    """An ingest worker whose Kafka consumer and producer are the stand-in classes given (built with the
    worker's keyword arguments), alone in an in-memory membership that beats every 20 ms (it holds its
    partitions within a poll), with no broker asked for the topics' retention."""
    monkeypatch.setattr(ingest_worker, "KafkaConsumer", consumer)
    monkeypatch.setattr(ingest_worker, "KafkaProducer", producer)
    monkeypatch.setattr(ingest_worker, "check_retention", lambda settings, bootstrap: [])
    worker: Any = IngestWorker(replace(settings, heartbeat_interval_ms=20), "127.0.0.1:1", store,
                               MemoryMembership())
    return worker


class CheckpointRedis:
    """A Redis client holding one checkpoint ``blob``; the forecaster's lease is free (no other lease exists),
    and the Lua scripts it runs are written down (``scripts_run``)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.scripts_run: list[str] = []

    def register_script(self, script: str):
        return lambda keys, args: self.scripts_run.append(script) or 1

    def set(self, key: str, value: str, nx: bool = False, px: int | None = None) -> bool:
        return True  # the lease is taken

    def get(self, key: str) -> bytes:
        return self.blob

    def scan_iter(self, match: str, count: int) -> list[bytes]:
        return []  # no other key: no forecaster of another layout holds a lease


class RecordingSink:
    """A Kafka forecast sink that records being closed (``instances`` keeps every one made)."""

    instances: ClassVar[list[RecordingSink]] = []

    def __init__(self, settings: object, bootstrap: str, **options: object) -> None:
        self.closed = False
        self.producer = self
        RecordingSink.instances.append(self)

    def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def close(self) -> None:
        self.closed = True
