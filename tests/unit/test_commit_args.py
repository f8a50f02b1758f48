"""``RedisWindowStore.commit_args`` refuses, before anything is sent, a batch the commit script would refuse.

The script checks too and writes nothing for a bad batch (tests/integration/test_commit_atomic.py); this side
fails earlier, with a ValueError that names the partition and the offset.
"""

from __future__ import annotations

import math

import orjson
import pytest

from tidecast.stream.adapters.redis_store import (
    BUCKET_LIMIT,
    EXACT_INT,
    METRIC_LIMIT,
    REVENUE_LIMIT,
    RedisWindowStore,
)
from tidecast.stream.ingest import IngestBatch, PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets


class NoRedis:
    def register_script(self, script: str) -> None:
        return None


STORE = RedisWindowStore(NoRedis(), "p.")  # type: ignore[arg-type]


def batch() -> IngestBatch:
    ing = PartitionIngestor("sales", 3, Buckets(86_400), 0, 30)
    ing.next_offset = 40
    docs = [{"event_id": f"e{n}", "type": "sale", "ts": n * 86_400_000, "sku": f"S{n}", "qty": 2, "price": 1.5}
            for n in range(3)]
    return ing.apply([Record(40 + n, orjson.dumps(doc)) for n, doc in enumerate(docs)])


def test_a_valid_batch_is_sent_unchanged() -> None:
    b = batch()
    args = STORE.commit_args(b)
    assert args[:3] == ["p.{3}:", "sales", 40]
    payload = orjson.loads(args[3])
    assert payload["next"] == 43 and payload["counts"] == [3, 0, 0, 0, 0]
    assert payload["rows"][-1] == [2 - 4, "all:S2", 2, 1, 3.0, 0, 0, 0, 0]


@pytest.mark.parametrize(("metric", "value"), [
    (2, math.nan), (2, math.inf), (2, -math.inf), (2, REVENUE_LIMIT * 1.5), (2, None), (2, "2"),
    (0, METRIC_LIMIT * 1.5), (0, math.nan),
])
def test_a_window_value_that_is_not_finite_or_too_large_is_refused(metric: int, value: object) -> None:
    b = batch()
    last = list(b.delta.rows)[-1]
    b.delta.rows[last][metric] = value  # type: ignore[call-overload]
    name = ("units", "orders", "revenue")[metric]
    with pytest.raises(ValueError, match=rf"sales:3 built on offset 40 \(next 43\): {name} of series 'all:S2'"):
        STORE.commit_args(b)


def test_the_limits_themselves_are_allowed() -> None:
    b = batch()
    b.delta.rows[next(iter(b.delta.rows))][:3] = [METRIC_LIMIT, -METRIC_LIMIT, REVENUE_LIMIT]
    assert orjson.loads(STORE.commit_args(b)[3])["rows"][0][2:5] == [METRIC_LIMIT, -METRIC_LIMIT, REVENUE_LIMIT]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("next_offset", 39, "'next' offset 39"),
        ("next_offset", EXACT_INT + 1, "'next' offset"),
        ("next_offset", 43.0, "'next' offset"),
        ("max_ts_ms", 2**60, "max event time"),
        ("max_ts_ms", 1.5, "max event time"),
        ("trim_before", BUCKET_LIMIT + 1, "trim bucket"),
        ("forget_seen", [0.5], "seen bucket"),
        ("new_seen", {10**15: ["a"]}, "seen bucket"),
    ],
)
def test_offsets_times_and_buckets_must_be_exact_integers(field: str, value: object, message: str) -> None:
    b = batch()
    setattr(b, field, value)
    with pytest.raises(ValueError, match=f"sales:3 built on offset 40.*{message}"):
        STORE.commit_args(b)


def test_counts_must_be_non_negative_integers() -> None:
    b = batch()
    b.counts.late = -1
    with pytest.raises(ValueError, match="count late=-1"):
        STORE.commit_args(b)


def test_a_row_key_must_be_a_bucket_and_a_series() -> None:
    b = batch()
    b.delta.rows[(1.5, "x")] = [0] * 7  # type: ignore[index]
    with pytest.raises(ValueError, match=r"row \(1.5, 'x'\)"):
        STORE.commit_args(b)


def test_what_json_cannot_carry_is_refused() -> None:
    b = batch()
    b.delta.rows[(0, "bad\ud800")] = [1] * 7
    with pytest.raises(ValueError, match=r"sales:3 built on offset 40.*JSON"):
        STORE.commit_args(b)
