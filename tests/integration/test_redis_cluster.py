"""tidecast's commands on a three-master Redis Cluster (the session's ``cluster``): ``TIDECAST_REDIS_URL`` in
its ``redis+cluster://`` form reaches every node, and ``rebuild`` finds the partition keys on all of them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import orjson
import pytest
from pipeline import TIDECAST, env_for

from tidecast.config import Settings
from tidecast.stream.adapters.redis_clients import redis_client
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets

pytestmark = pytest.mark.integration


def test_inspect_and_rebuild_see_every_node(settings: Settings, cluster: str) -> None:
    settings = replace(settings, redis_url=cluster)
    client = redis_client(settings, cluster)
    store = RedisWindowStore(client, settings.topic_prefix)
    for partition in range(12):  # 12 hash tags: spread over the three masters' slots
        state = store.load_partition("sales", partition)
        ingestor = PartitionIngestor("sales", partition, Buckets(86_400), 0, 30, state)
        doc = {"event_id": f"e{partition}", "type": "sale", "ts": 1_767_571_200_000, "sku": f"A{partition}", "qty": 2}
        assert store.commit(ingestor.apply([Record(0, orjson.dumps(doc))]))
    nodes = {client.keyslot(f"{settings.topic_prefix}{{{p}}}:off") * 3 // 16_384 for p in range(12)}
    assert len(nodes) == 3  # the test means something only if the partitions sit on every master

    shown = subprocess.run([*TIDECAST, "inspect", "stats", "--json"], env=env_for(settings), capture_output=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr.decode()[-2000:]
    report = json.loads(shown.stdout)
    assert report["ingested"] == 12 and len(report["offsets"]) == 12

    rebuilt = subprocess.run([*TIDECAST, "rebuild", "--yes"], env=env_for(settings), capture_output=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr.decode()[-2000:]
    assert store.partitions() == [] and store.stats().counters["ingested"] == 0
    assert not list(client.scan_iter(match=f"{settings.topic_prefix}{{*", count=1000))
