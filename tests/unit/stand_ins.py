"""Stand-ins for the live forecaster's servers, for unit tests of ``tidecast.live.build`` without servers."""

from __future__ import annotations

from typing import ClassVar


class CheckpointRedis:
    """A Redis client holding one checkpoint ``blob``; the forecaster's lease is free, and the Lua scripts it
    runs are written down (``scripts_run``)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.scripts_run: list[str] = []

    def register_script(self, script: str):
        return lambda keys, args: self.scripts_run.append(script) or 1

    def set(self, key: str, value: str, nx: bool = False, px: int | None = None) -> bool:
        return True  # the lease is taken

    def get(self, key: str) -> bytes:
        return self.blob


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
