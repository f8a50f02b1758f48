"""The forecaster through outages, with stand-ins for Redis: lease calls retried after a lost connection, a
lapsed lease taken again (one warning) or refused, and windows that vanish under a running forecaster (Redis
emptied) and come back. The Lua script itself runs on a real server in tests/integration/test_forecaster_lease.py.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import redis

from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints, LeaseLost, _digest
from tidecast.stream.adapters.retry import REDIS_ERRORS, Outage, OutageError
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

DAY = 86_400
DROPPED = redis.ConnectionError("Connection closed by server.")
KEPT, LOST = [1, b""], [0, b""]
"""Replies of the keep script: the lease held (no re-take notice), and lost."""


def retaken(code: str, call: str) -> list:
    """A reply that carries a re-take notice (code 2: the lease had lapsed; 3: the checkpoint was gone too)."""
    return [1, f"{code}:{call}".encode()]


class ScriptedRedis:
    """A Redis client whose calls answer from a script: each call takes the next reply (an exception is
    raised); every call is written down as (what, args)."""

    def __init__(self, *replies: object) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, Any]] = []

    def _next(self, what: str, args: Any) -> Any:
        self.calls.append((what, args))
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def register_script(self, source: str):
        name = "release" if "DEL" in source else "take_over" if "ARGV[3])\nreturn 1" in source else "keep"
        return lambda keys, args: self._next(name, args)

    def set(self, key: str, value: str, nx: bool = False, px: int | None = None) -> object:
        return self._next("set", value)

    def get(self, key: str) -> object:
        return self._next("get", key)


def lease(client: ScriptedRedis, timeout: float = 60) -> LeasedCheckpoints:
    return LeasedCheckpoints(client, "t.", outage=Outage("Redis", timeout, REDIS_ERRORS, sleep=lambda s: None))  # type: ignore[arg-type]


def test_a_save_retried_after_a_lost_connection_sends_the_same_call_again() -> None:
    client = ScriptedRedis(DROPPED, KEPT)
    checkpoints = lease(client)
    checkpoints.save(b"state 1")
    first, again = client.calls
    assert first == again  # the same call id too: idempotent for the owner
    assert first[1][:3] + first[1][4:] == [checkpoints.owner, 30_000, "", "", b"state 1", _digest(b"state 1")]
    assert checkpoints.digest == _digest(b"state 1")
    client.replies = [DROPPED, KEPT]
    checkpoints.renew()
    assert client.calls[-1][1][2] == _digest(b"state 1") and len(client.calls[-1][1]) == 5


def test_the_digest_compared_is_that_of_the_blob_last_loaded_or_saved() -> None:
    client = ScriptedRedis(b"resumed", KEPT)
    checkpoints = lease(client)
    assert checkpoints.load() == b"resumed"
    checkpoints.renew()
    assert client.calls[-1][1][2] == _digest(b"resumed")


def test_an_acquire_whose_set_landed_unseen_finds_its_own_id() -> None:
    client = ScriptedRedis()
    checkpoints = lease(client)
    client.replies = [DROPPED, False, checkpoints.owner.encode()]  # the SET landed unseen; its retry is refused
    checkpoints.acquire()
    assert [what for what, _ in client.calls] == ["set", "set", "get"]


def lease_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.endswith("forecaster_lease")]


def test_a_lapsed_lease_taken_again_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    # the notice of a re-take comes back until reported: with the re-taking call's reply (lost or not) and after
    client = ScriptedRedis(DROPPED, retaken("2", "a"), retaken("2", "a"), KEPT, retaken("3", "b"), KEPT,
                           retaken("3", "c"))
    checkpoints = lease(client)
    with caplog.at_level(logging.WARNING):
        checkpoints.renew()
        checkpoints.renew()
        assert client.calls[-1][1][4] == "2:a"  # reported: the script deletes it
        checkpoints.renew()
        assert [r.getMessage() for r in caplog.records if "lapsed" in r.getMessage()] == [lease_lines(caplog)[0]]
        checkpoints.renew()
        checkpoints.renew()
        checkpoints.save(b"state")
    lines = lease_lines(caplog)[1:]
    assert lines[0].startswith("the checkpoint is gone from Redis (data lost?): the forecaster carries on from "
                               "memory and writes it again at the next close")
    assert "and wrote it again" in lines[1] and len(lines) == 2


def test_another_holder_or_a_changed_checkpoint_is_lease_lost() -> None:
    checkpoints = lease(ScriptedRedis(LOST, LOST))
    with pytest.raises(LeaseLost, match="another forecaster may hold it or wrote the checkpoint"):
        checkpoints.renew()
    with pytest.raises(LeaseLost):
        checkpoints.save(b"x")
    assert checkpoints.digest == ""  # a refused save changes nothing


def test_a_redis_outage_longer_than_the_timeout_fails_with_outage_error() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = ScriptedRedis(*[redis.TimeoutError("Timeout reading from socket")] * 100)
    checkpoints = LeasedCheckpoints(client, "t.", outage=Outage("Redis", 60, REDIS_ERRORS,  # type: ignore[arg-type]
                                                                 clock=lambda: now[0], sleep=sleep))
    with pytest.raises(OutageError, match=r"Redis unreachable for 60s \(TIDECAST_OUTAGE_TIMEOUT\)"):
        checkpoints.renew()


class Last:
    """The smallest learner: forecasts each series' last bucket; its version counts what it learned."""

    model_version, min_history, horizon, quantiles = 0, 2, 1, (0.5,)

    def learn(self, history: Any, *rest: Any) -> dict:
        self.model_version += 1
        return {}

    def forecast(self, history: Any, *rest: Any) -> Any:
        return history[:, -1:, :1], history[:, -1:, 0]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


START_MS = 1_767_571_200_000  # a Monday


def ingest(store: MemoryWindowStore, days: int) -> None:
    """One sale a day for ``days`` days, read from offset 0 into ``store`` (as an ingest after a flush does)."""
    docs = [{"event_id": f"e{d}", "type": "sale", "ts": START_MS + d * DAY * 1000, "sku": "A", "qty": 1}
            for d in range(days)]
    ingestor = PartitionIngestor("sales", 0, Buckets(DAY), 0, 30, store.load_partition("sales", 0))
    assert store.commit(ingestor.apply([Record(i, orjson.dumps(doc)) for i, doc in enumerate(docs)]))


def test_windows_emptied_under_the_forecaster_pause_it_and_it_carries_on_from_memory() -> None:
    store = MemoryWindowStore()
    ingest(store, 10)
    config = ForecasterConfig(bucket_seconds=DAY, lateness_seconds=0, retention=30, quantiles=(0.5,),
                              inputs=("sales:0",))
    sink, learner = MemorySink(), Last()
    loop = Forecaster(config, store, learner, sink, MemoryCheckpoints(), lambda s: b"", dict)
    closed = loop.step()
    before = (loop.last_closed, learner.model_version)
    assert len(closed) == 9
    loop.store = store = MemoryWindowStore()  # FLUSHALL: no watermark, no window
    assert loop.step() == [] and (loop.last_closed, learner.model_version) == before
    ingest(store, 6)  # ingest re-reads part of the topic: watermarks still behind the last close
    assert loop.step() == [] and (loop.last_closed, learner.model_version) == before
    store = MemoryWindowStore()
    ingest(store, 14)  # ...and past it with new records: closes go on from the last one, the model kept
    loop.store = store
    reports = loop.step()
    assert [r.bucket for r in reports] == list(range(before[0] + 1, before[0] + 5))
    assert [r.model_version for r in reports] == list(range(before[1] + 1, before[1] + 5))
