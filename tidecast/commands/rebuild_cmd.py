"""``tidecast rebuild [--yes]``: the repair path for lost state or gaps.

It deletes the prefix's partition state in Redis (windows, offsets, epoch markers, counters, dedup sets, gaps:
the keys ``<prefix>{<partition>}:*``, nothing else) so the next ``tidecast ingest`` reads the retained Kafka
history into fresh windows, and first says how much the input topics still hold: per partition the earliest
offset Kafka keeps against the offset Redis had reached. Without ``--yes`` it only reports. Stop every ingest
worker first.

>>> plan_lines({"sales:0": 0, "sales:1": 40}, {"sales:0": 120, "sales:1": 300})
['sales:0: Kafka holds offsets from 0 (Redis had reached 120): complete', \
'sales:1: Kafka holds offsets from 40 (Redis had reached 300): records 0 to 39 are gone, the rebuilt windows miss them']
"""

from __future__ import annotations

import argparse

from tidecast.config import Settings
from tidecast.infra.endpoints import resolve


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rebuild", help="delete the Redis windows and offsets so ingest re-reads Kafka (repair)")
    parser.add_argument("--yes", action="store_true", help="really delete (without it: only report)")
    parser.set_defaults(handler=run)


def plan_lines(earliest: dict[str, int], reached: dict[str, int]) -> list[str]:
    """One line per partition: what Kafka still holds against the offset Redis had reached."""
    lines = []
    for name, first in sorted(earliest.items(), key=_partition_order):
        had = reached.get(name)
        had_text = "nothing stored" if had is None else f"Redis had reached {had:,}"
        verdict = "complete" if first == 0 else f"records 0 to {first - 1:,} are gone, the rebuilt windows miss them"
        lines.append(f"{name}: Kafka holds offsets from {first:,} ({had_text}): {verdict}")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast.stream.adapters.kafka_clients import earliest_offsets
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisWindowStore, rebuild

    endpoints = resolve(settings)
    client = redis_client(settings, endpoints.redis)
    store = RedisWindowStore(client, settings.topic_prefix)
    stats = store.stats()
    earliest = earliest_offsets(endpoints.kafka, settings.topics.ingested, settings)
    for line in plan_lines(earliest, stats.offsets):
        print(line)
    print(f"Redis holds {stats.counters['ingested']:,} ingested events under "
          f"{settings.topic_prefix!r}, {stats.gaps} gap(s).")
    if not args.yes:
        print("Nothing deleted: stop every ingest worker, then run `tidecast rebuild --yes`.")
        return 1
    deleted = rebuild(client, settings.topic_prefix)
    print(f"Deleted {deleted:,} keys under {settings.topic_prefix}{{<partition>}}:. The next `tidecast ingest` "
          f"reads the topics from their earliest offsets.")
    return 0


def _partition_order(item: tuple[str, object]) -> tuple[str, int]:
    topic, _, partition = item[0].rpartition(":")
    return topic, int(partition)
