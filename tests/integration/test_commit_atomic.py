"""A commit the script refuses writes nothing, however often it is retried (real valkey).

Redis does not roll back a script's earlier writes when a later command fails, so ``commit_batch.lua`` checks
the whole batch before its first write. Each case hand-writes a payload that Python would never send (NaN,
a string metric, a float offset...), mostly in the batch's *last* row or field, calls the script directly
three times and compares a ``DUMP`` of every key under the prefix with the state before.
"""

from __future__ import annotations

import uuid

import orjson
import pytest
import redis

from tidecast.infra import Endpoints
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
BAD = "@BAD@"


def sale(n: int, day: int, qty: float = 1, price: float = 2.5) -> bytes:
    return orjson.dumps({"event_id": f"e{n}", "type": "sale", "ts": day * DAY_MS + n, "sku": f"S{n % 3}",
                         "qty": qty, "price": price})


@pytest.fixture
def store(servers: Endpoints) -> RedisWindowStore:
    client = redis.Redis.from_url(servers.redis)
    return RedisWindowStore(client, f"atomic-{uuid.uuid4().hex[:8]}.")


def snapshot(store: RedisWindowStore) -> dict[bytes, bytes]:
    keys = sorted(store.client.scan_iter(match=store.prefix + "*", count=1000))
    return {key: store.client.dump(key) for key in keys}


def committed_twice(store: RedisWindowStore) -> tuple[PartitionIngestor, dict]:
    """Two valid batches committed (seen sets, windows of two days, counters, offsets); the payload of a
    third, valid batch (several rows, new ids, forget and trim) that has not been sent."""
    ing = PartitionIngestor("sales", 0, Buckets(86_400), 0, 1)
    for records in ([Record(n, sale(n, 10)) for n in range(3)], [Record(3 + n, sale(3 + n, 11)) for n in range(3)]):
        batch = ing.apply(records)
        assert store.commit(batch)
        ing.adopt(batch)
    third = ing.apply([Record(6 + n, sale(6 + n, 12, qty=2)) for n in range(4)])
    payload = orjson.loads(store.commit_args(third)[3])
    assert len(payload["rows"]) == 3 and payload["seen"] and payload["forget"] and payload["trim"] is not None
    return ing, payload


def with_bad(payload: dict, where: str, raw: str) -> bytes:
    """``payload`` as JSON with ``raw`` (any JSON text, also NaN or Infinity) put at ``where``."""
    doc = orjson.loads(orjson.dumps(payload))
    if where == "last metric":
        doc["rows"][-1][-1] = BAD
    elif where == "last row bucket":
        doc["rows"][-1][0] = BAD
    elif where == "last row series":
        doc["rows"][-1][1] = BAD
    elif where == "last row":
        doc["rows"][-1] = BAD
    elif where == "last seen id":
        doc["seen"][-1][1][-1] = BAD
    elif where == "last seen bucket":
        doc["seen"][-1][0] = BAD
    elif where == "last count":
        doc["counts"][-1] = BAD
    elif where == "counts":
        doc["counts"] = BAD
    elif where == "forget":
        doc["forget"][-1] = BAD
    else:
        doc[where] = BAD
    return orjson.dumps(doc).replace(orjson.dumps(BAD), raw.encode())


CASES = [
    ("last metric", "NaN", "finite"),
    ("last metric", "Infinity", "finite"),
    ("last metric", "-1e400", "finite"),
    ("last metric", '"many"', "finite"),
    ("last metric", "null", "finite"),
    ("last metric", "1e16", "finite"),
    ("last row", '[12, "all:S0", 1, 1, 1]', "row"),
    ("last row", '"x"', "row"),
    ("last row bucket", "1.5", "bucket"),
    ("last row bucket", '"12"', "bucket"),
    ("last row series", "7", "series"),
    ("last seen id", "123", "event id"),
    ("last seen bucket", "null", "bucket"),
    ("last count", "-1", "counts"),
    ("last count", "0.5", "counts"),
    ("counts", "[1, 2, 3]", "counts"),
    ("forget", '"x"', "forget"),
    ("trim", "1.5", "trim"),
    ("max_ts", '"soon"', "max_ts"),
    ("max_ts", "9007199254740993", "max_ts"),
    ("next", "5", "next"),
    ("next", "10.5", "next"),
    ("next", "1e300", "next"),
]


@pytest.mark.parametrize(("where", "raw", "reason"), CASES, ids=[f"{w}={r}" for w, r, _ in CASES])
def test_a_refused_batch_writes_nothing_even_when_retried(
    store: RedisWindowStore, where: str, raw: str, reason: str
) -> None:
    _, payload = committed_twice(store)
    before = snapshot(store)
    args = [store.partition_prefix(store.prefix, 0), "sales", 6, with_bad(payload, where, raw)]
    for _ in range(3):
        with pytest.raises(redis.ResponseError, match=rf"commit_batch: .*{reason}"):
            store._commit(keys=[store.partition_prefix(store.prefix, 0) + "off"], args=args)
        assert snapshot(store) == before

    # the offset did not move, so the batch as Python sends it still applies, once
    good = [args[0], args[1], args[2], orjson.dumps(payload)]
    assert store._commit(keys=[args[0] + "off"], args=good) == 1
    assert store.stats().offsets == {"sales:0": 10}
    assert store.stats().counters["ingested"] == 10


def test_a_payload_that_is_not_json_is_refused(store: RedisWindowStore) -> None:
    committed_twice(store)
    before = snapshot(store)
    p = store.partition_prefix(store.prefix, 0)
    with pytest.raises(redis.ResponseError, match=r"commit_batch: .*JSON"):
        store._commit(keys=[p + "off"], args=[p, "sales", 6, b'{"next": 7, "rows": [[1, "a", 1'])
    assert snapshot(store) == before


def test_the_fence_still_comes_first(store: RedisWindowStore) -> None:
    """A batch built on another offset is fenced (0), not refused, even when it is also invalid."""
    _, payload = committed_twice(store)
    before = snapshot(store)
    p = store.partition_prefix(store.prefix, 0)
    assert store._commit(keys=[p + "off"], args=[p, "sales", 5, with_bad(payload, "last metric", "NaN")]) == 0
    assert snapshot(store) == before
