"""The commit script writes counters and window metrics by position: its lists must be Python's, in order;
and it checks a batch against the same bounds as ``RedisWindowStore.commit_args``."""

from __future__ import annotations

import re
from importlib import resources

import orjson

from tidecast.stream.adapters import redis_store
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.ingest import COUNTERS, PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.windows import METRICS

LUA = resources.files("tidecast.stream.adapters").joinpath("lua/commit_batch.lua").read_text()


def lua_list(name: str) -> tuple[str, ...]:
    match = re.search(rf"local {name} = \{{([^}}]*)\}}", LUA)
    assert match, f"no 'local {name} = {{...}}' in commit_batch.lua"
    return tuple(re.findall(r"'([^']*)'", match.group(1)))


def test_the_scripts_counters_are_the_ingest_counters() -> None:
    assert lua_list("counters") == COUNTERS
    assert f"for k = 1, {len(COUNTERS)} do" in LUA


def test_the_scripts_metrics_are_the_window_metrics() -> None:
    assert lua_list("metrics") == METRICS
    assert LUA.count(f"for m = 1, {len(METRICS)} do") == 2


def test_the_script_checks_the_shape_python_sends() -> None:
    assert f"#counts ~= {len(COUNTERS)}" in LUA
    assert f"#row ~= {len(METRICS) + 2}" in LUA
    assert f"for m = 3, {len(METRICS) + 2} do" in LUA


def test_the_scripts_bounds_are_pythons() -> None:
    assert "(m == 5) and REVENUE_LIMIT" in LUA and METRICS[5 - 3] == "revenue"  # row = [bucket, series, *metrics]
    for name in ("METRIC_LIMIT", "REVENUE_LIMIT", "EXACT_INT", "BUCKET_LIMIT"):
        match = re.search(rf"^local {name} = (\S+)$", LUA, re.MULTILINE)
        assert match, f"no 'local {name} = ...' in commit_batch.lua"
        assert float(match.group(1)) == getattr(redis_store, name), name


def test_the_batch_json_carries_counts_and_rows_in_that_order() -> None:
    ing = PartitionIngestor("sales", 0, Buckets(86_400), 0, 30)
    batch = ing.apply([Record(0, b'{"event_id":"a","type":"sale","ts":0,"sku":"A","qty":2,"price":1.5}'),
                       Record(1, b"{")])

    class NoRedis:
        def register_script(self, script: str) -> None:
            return None

    args = RedisWindowStore(NoRedis(), "p.").commit_args(batch)  # type: ignore[arg-type]
    payload = orjson.loads(args[3])
    assert payload["counts"] == [1, 0, 0, 1, 1]  # ingested, duplicates, late, invalid, dlq
    assert payload["rows"] == [[-4, "all:A", 2, 1, 3.0, 0, 0, 0, 0]]
