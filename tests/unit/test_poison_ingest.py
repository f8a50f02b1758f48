"""Poison pills: no single record may stop a partition's ingest, and no event time may run ahead of the clock.

Each of these records once made ``tidecast ingest`` exit 1 on every restart (or emptied every window):
a quantity of 1e308 (infinite revenue), integer sums past 2^64 (orjson refuses them), a 6 MB message (its
DLQ copy is over the producer's and the broker's limit), an event dated 2199 (spread to every partition).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

import tidecast.stream.ingest as ingest_module
from tidecast.config import ConfigError, Settings
from tidecast.consumers.committer import Committer
from tidecast.consumers.dlq import dlq_key, dlq_message
from tidecast.consumers.ingest_worker import DlqAck, IngestProgress
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.ingest import FUTURE, UNCLASSIFIABLE, PartitionIngestor, Record, Reject
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

H = 3_600_000
DAY = 24 * H
HOURLY = Buckets(3600)
NOW = HOURLY.start_ms(500_000) + H // 2  # some wall clock, mid-hour
YEAR_2199 = 7_226_582_400_000  # 2199-01-01T00:00Z


def sale(event_id: str, ts: int, qty: Any = 1, price: Any = 2.0, sku: str = "A") -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "sale", "ts": ts, "sku": sku, "qty": qty, "price": price})


def batch_json(batch: Any) -> dict:
    """The batch as the Redis commit script gets it (raises where orjson cannot serialise it)."""

    class NoRedis:
        def register_script(self, script: str) -> None:
            return None

    return orjson.loads(RedisWindowStore(NoRedis(), "p.").commit_args(batch)[3])  # type: ignore[arg-type]


# --- finding 1: bounds, so every sum stays finite and serialisable -------------------------------------------------

numbers = st.one_of(
    st.integers(-(2**63), 2**64 - 1),  # what orjson parses as an integer (beyond: a float)
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 2**64 - 1, 1_000_000, -1_000_000, 10_000_000, 1e6 + 1e-9]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(numbers, st.one_of(st.none(), numbers)), min_size=1, max_size=60))
def test_whatever_the_validator_accepts_sums_to_finite_serialisable_windows(lines: list) -> None:
    values = [sale(f"e{i}", NOW, qty, price) for i, (qty, price) in enumerate(lines)]
    batch = PartitionIngestor("sales", 0, HOURLY, 0, 48).apply([Record(i, v) for i, v in enumerate(values)])
    for row in batch.delta.rows.values():
        assert all(math.isfinite(v) and abs(v) < 2**53 * 1e7 for v in row), row
    payload = batch_json(batch)  # orjson: no Infinity, no integer past 64 bits
    assert payload["counts"][0] + payload["counts"][3] == len(lines)


def test_the_reproduced_poison_pills_are_rejected_and_the_batch_commits() -> None:
    records = [
        Record(0, sale("inf", NOW, qty=1e308, price=10.0)),
        Record(1, sale("big1", NOW, qty=2**64 - 1, price=None)),
        Record(2, sale("big2", NOW, qty=2**64 - 1, price=None)),
        Record(3, sale("ok", NOW, qty=3, price=2.0)),
    ]
    batch = PartitionIngestor("sales", 0, HOURLY, 0, 48).apply(records)
    assert [r.offset for r in batch.rejects] == [0, 1, 2]
    assert all("TIDECAST_MAX_QTY" in r.reason for r in batch.rejects)
    assert batch_json(batch)["rows"] == [[HOURLY.index(NOW), "all:A", 3, 1, 6.0, 0, 0, 0, 0]]


def test_an_unforeseen_error_while_classifying_goes_to_the_dlq(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest_module.validate

    def buggy(raw: Any, bounds: Any) -> Any:
        if b"boom" in raw:
            raise ZeroDivisionError("x" * 10_000)
        return real(raw, bounds)

    monkeypatch.setattr(ingest_module, "validate", buggy)
    batch = PartitionIngestor("sales", 0, HOURLY, 0, 48).apply(
        [Record(0, sale("a", NOW)), Record(1, sale("boom", NOW)), Record(2, sale("c", NOW))]
    )
    assert batch.counts.ingested == 2 and batch.counts.invalid == 1 and batch.next_offset == 3
    [reject] = batch.rejects
    assert reject.offset == 1 and reject.reason.startswith(f"{UNCLASSIFIABLE}: ZeroDivisionError: 'xxx")
    assert len(reject.reason) < 200


def test_a_record_that_fails_after_validation_leaves_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    ing = PartitionIngestor("sales", 0, HOURLY, 0, 48)
    original = ingest_module.WindowDelta.add

    def add(self: Any, event: Any, bucket: int) -> None:
        if event.event_id == "bad":
            raise RuntimeError("a bug")
        original(self, event, bucket)

    monkeypatch.setattr(ingest_module.WindowDelta, "add", add)
    batch = ing.apply([Record(0, sale("bad", NOW)), Record(1, sale("ok", NOW))])
    assert batch.counts.invalid == 1 and batch.counts.ingested == 1
    assert batch.new_seen == {HOURLY.index(NOW): ["ok"]}  # "bad" is not remembered as seen


# --- DLQ messages: capped payload, capped reason, per-record send failures skipped ----------------------------------

DLQ_SCHEMA = jsonschema.Draft202012Validator(
    orjson.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" / "dlq.schema.json").read_bytes())
)


def test_a_huge_message_is_dlqd_truncated_with_its_original_size() -> None:
    value = b"{" + b"x" * 6_300_000
    reject = Reject("tidecast.sales", 1, 5, b"k" * 200_000, value, "not valid JSON: ...")
    message = dlq_message(reject, NOW)
    doc = orjson.loads(message)
    assert len(message) < 100_000  # far below Kafka's 1 MB default
    assert doc["truncated"] is True and doc["payload_size"] == len(value)
    kept = base64.b64decode(doc["payload_b64"])
    assert len(kept) == 64 * 1024 and value.startswith(kept)
    DLQ_SCHEMA.validate(doc)
    assert len(dlq_key(reject)) == 64 * 1024  # type: ignore[arg-type]
    small = orjson.loads(dlq_message(Reject("t", 0, 0, None, b"{", "not valid JSON"), NOW))
    assert "truncated" not in small and "payload_size" not in small  # whole payloads: the message as before


def test_a_reason_is_capped() -> None:
    doc = orjson.loads(dlq_message(Reject("t", 0, 0, None, b"", "r" * 50_000), NOW))
    assert len(doc["reason"]) == 1000 and doc["reason"].endswith("…")


class Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get(self, timeout: float | None = None) -> object:
        raise self.exc


def test_a_dlq_send_refused_for_its_record_is_counted_and_skipped_and_the_batch_commits() -> None:
    store = MemoryWindowStore()
    progress = IngestProgress()
    ing = PartitionIngestor("sales", 0, HOURLY, 0, 48, store.load_partition("sales", 0))
    batch = ing.apply([Record(0, b"{"), Record(1, sale("a", NOW))])
    committer = Committer(store)
    committer.submit(batch, [DlqAck(Failing(MessageSizeTooLargeError("too big")), progress, ("sales", 0, 0))])
    committer.drain()
    committer.close()
    assert progress.dlq_failed == 1
    assert store.load_partition("sales", 0).next_offset == 2 and store.stats().counters["ingested"] == 1


def test_a_dlq_send_that_failed_for_another_reason_stops_the_commit() -> None:
    store = MemoryWindowStore()
    progress = IngestProgress()
    batch = PartitionIngestor("sales", 0, HOURLY, 0, 48).apply([Record(0, b"{")])
    committer = Committer(store)
    committer.submit(batch, [DlqAck(Failing(KafkaTimeoutError("broker away")), progress, ("sales", 0, 0))])
    with pytest.raises(KafkaTimeoutError):
        committer.drain()
    with pytest.raises(KafkaTimeoutError):
        committer.close()
    assert progress.dlq_failed == 0 and store.load_partition("sales", 0).next_offset is None


def test_a_send_refused_before_it_left_is_counted_too() -> None:
    progress = IngestProgress()
    ack = DlqAck(None, progress, ("sales", 0, 9), error=MessageSizeTooLargeError("client-side check"))
    assert ack.get(timeout=1) is None and progress.dlq_failed == 1


# --- finding 2: event time cannot run ahead of the wall clock -------------------------------------------------------


def test_an_event_far_in_the_future_is_rejected_as_future_and_counted_invalid() -> None:
    ing = PartitionIngestor("sales", 0, HOURLY, 2 * DAY, 48, now_ms=lambda: NOW, max_future_ms=DAY)
    batch = ing.apply([
        Record(0, sale("a", NOW)),
        Record(1, sale("poison", YEAR_2199)),
        Record(2, sale("soon", NOW + DAY)),  # exactly at the margin: accepted
        Record(3, sale("beyond", NOW + DAY + 1)),
        Record(4, sale("b", NOW + 1)),
    ])
    assert [(r.offset, r.reason) for r in batch.rejects] == [(1, FUTURE), (3, FUTURE)]
    assert batch.counts.invalid == 2 and batch.counts.ingested == 3 and batch.counts.late == 0
    assert batch.max_ts_ms == NOW + DAY


def test_the_clock_is_read_per_batch() -> None:
    clock = [NOW]
    ing = PartitionIngestor("sales", 0, HOURLY, 0, 48, now_ms=lambda: clock[0], max_future_ms=0)
    assert ing.apply([Record(0, sale("a", NOW + H))]).rejects[0].reason == FUTURE
    clock[0] = NOW + H
    assert ing.apply([Record(0, sale("a", NOW + H))]).counts.ingested == 1


def test_one_event_from_2199_no_longer_makes_every_later_event_late() -> None:
    store = MemoryWindowStore()
    partitions = {
        p: PartitionIngestor("sales", p, HOURLY, 2 * H, 48, store.load_partition("sales", p), now_ms=NOW)
        for p in (0, 1)
    }
    for p, values in ((0, [sale("a", NOW - H), sale("poison", YEAR_2199)]), (1, [sale("b", NOW - H)])):
        batch = partitions[p].apply([Record(i, v) for i, v in enumerate(values)])
        assert store.commit(batch)
        partitions[p].adopt(batch)
    newest = max(store.max_event_times().values())
    moved = partitions[1].advance(newest, position=1)
    assert moved is None or moved.max_ts_ms <= NOW + DAY
    later = partitions[0].apply([Record(2, sale("c", NOW))])
    assert later.counts.ingested == 1 and later.counts.late == 0


def test_the_idle_advance_never_passes_the_wall_clock_plus_the_margin() -> None:
    ing = PartitionIngestor("sales", 0, HOURLY, 0, 48, now_ms=NOW, max_future_ms=DAY)
    moved = ing.advance(YEAR_2199, position=0)  # a max event time stored before the guard existed
    assert moved is not None and moved.max_ts_ms == NOW + DAY and moved.trim_before is not None
    ing.adopt(moved)
    assert ing.advance(YEAR_2199, position=0) is None
    unguarded = PartitionIngestor("sales", 0, HOURLY, 0, 48)  # offline replay: no wall clock, no cap
    assert unguarded.advance(YEAR_2199, position=0).max_ts_ms == YEAR_2199  # type: ignore[union-attr]


# --- the settings ---------------------------------------------------------------------------------------------------


def test_the_bounds_are_settings() -> None:
    s = Settings.from_env({"TIDECAST_MAX_QTY": "500", "TIDECAST_MAX_PRICE": "99.5", "TIDECAST_MAX_FUTURE": "2h",
                           "TIDECAST_DLQ_MAX_BYTES": "1024"})
    assert (s.max_qty, s.max_price, s.max_future_seconds, s.dlq_max_bytes) == (500, 99.5, 7200, 1024)
    d = Settings()
    assert (d.max_qty, d.max_price, d.max_future_seconds, d.dlq_max_bytes) == (1e6, 1e7, 86_400, 65_536)


@pytest.mark.parametrize(("var", "raw", "message"), [
    ("TIDECAST_MAX_QTY", "0", "TIDECAST_MAX_QTY: expected a positive number, got '0'"),
    ("TIDECAST_MAX_QTY", "inf", "TIDECAST_MAX_QTY: expected a positive number"),
    ("TIDECAST_MAX_PRICE", "1e13", "TIDECAST_MAX_PRICE: expected a number above 0 and at most 1e+12"),
    ("TIDECAST_MAX_FUTURE", "soon", "TIDECAST_MAX_FUTURE: not a duration"),
    ("TIDECAST_DLQ_MAX_BYTES", "2000000", "TIDECAST_DLQ_MAX_BYTES: expected 0 to 393216 bytes"),
])
def test_bad_bound_settings_name_the_variable(var: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        Settings.from_env({var: raw})
