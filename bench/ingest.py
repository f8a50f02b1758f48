"""Ingest throughput against the raw kafka-python consumer, measured in the same run.

    .venv/bin/python bench/ingest.py [--events 500000] [--series 500] [--bucket 1d]

Produces a synthetic stream (1% malformed, 1% duplicates) to fresh topics on the embedded servers, then
reads it twice: once with a bare KafkaConsumer that only touches each record (the raw rate), once with
the full ingest worker (validate + dedup + bucket + Redis Lua commit + offsets + DLQ). Both rates are
counted from the first record to the last one handled, so the workers' start (joining the membership) is not in either.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import redis
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.config import Settings
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.producers.event_sender import EventSender
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.ingest_members import RedisMembership
from tidecast.stream.adapters.kafka_clients import consumer_config, create_topics
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.timebuckets import parse_duration


def produce(settings: Settings, events: int, series: int) -> tuple[int, float]:
    days = max(7, events // (series * 60))  # the generator makes roughly 60 events per series and day
    docs = itertools.islice(generate(SyntheticConfig(series=series, days=days, seed=1)), events)
    start = time.perf_counter()
    with EventSender(settings, settings.kafka_bootstrap) as sender:
        for out in with_faults(docs, malformed=0.01, duplicates=0.01, seed=1):
            if out.doc is None:
                sender.send_raw(settings.topics.sales, None, out.value)
            else:
                sender.send(out.doc)
    return sender.sent, time.perf_counter() - start


def raw_consume(settings: Settings, total: int) -> float:
    """Records per second of a bare KafkaConsumer reading both input topics (same fetch settings)."""
    consumer = KafkaConsumer(**consumer_config(settings, settings.kafka_bootstrap, None, reset="earliest"))
    parts = [TopicPartition(t, p) for t in settings.topics.inputs for p in range(settings.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen = 0
    first = None
    while seen < total:
        for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
            if first is None:
                first = time.perf_counter()
            for record in records:
                _ = record.value
            seen += len(records)
    elapsed = time.perf_counter() - first
    consumer.close()
    return seen / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--bucket", default="1d")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as home, infra.running(Settings(home=Path(home))) as endpoints:
        settings = Settings(
            home=Path(home), kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis,
            topic_prefix="bench.", bucket_seconds=parse_duration(args.bucket), retention=400,
        )
        create_topics(endpoints.kafka, settings.topics.all, settings.partitions)
        sent, produce_s = produce(settings, args.events, args.series)
        console.print(f"produced {sent:,} messages in {produce_s:.1f}s ({sent / produce_s:,.0f}/s)")
        raw_rates = [raw_consume(settings, sent) for _ in range(2)]
        store = RedisWindowStore(redis.Redis.from_url(endpoints.redis), settings.topic_prefix)
        progress = IngestWorker(settings, endpoints.kafka, store,
                                RedisMembership(store.client, settings.topic_prefix)).run(until_idle=2.0)
        memory = redis.Redis.from_url(endpoints.redis).info("memory")["used_memory"]
    raw = max(raw_rates)
    table = Table(title=f"ingest vs raw consume: {sent:,} messages, {args.series} series, bucket {args.bucket}")
    for column in ("path", "msg/s", "ratio to raw"):
        table.add_column(column, justify="right")
    table.add_row("raw kafka-python consume (best of 2)", f"{raw:,.0f}", "1.00")
    table.add_row("tidecast ingest (validate+dedup+bucket+Redis+offsets)", f"{progress.rate:,.0f}",
                  f"{progress.rate / raw:.2f}")
    console.print(table)
    c = progress
    console.print(f"ingested {c.ingested:,}, duplicates {c.duplicates:,}, invalid {c.invalid:,}, late {c.late:,}; "
                  f"Redis used_memory {memory / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
