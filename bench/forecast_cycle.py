"""Time one bucket-close cycle (read windows, learn, forecast, publish, checkpoint) at 10k and 100k series.

    .venv/bin/python bench/forecast_cycle.py [--series 10000 100000] [--buckets 6] [--explain]

Fills the Redis windows of the embedded valkey-server directly (the same key layout the ingest writes) for
a few daily buckets, runs the live forecaster (Redis windows and checkpoints, Kafka publisher on the
embedded broker) through them, and reports the last close, which is the steady state: every series known,
the panel warm. torch uses TIDECAST_TORCH_THREADS threads (default 1), as in `tidecast run`. With
``--explain`` each size runs a second time with ``TIDECAST_EXPLAIN`` on (every forecast published with its
explanation), beside the first as the reference.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.config import Settings
from tidecast.live import build
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.timebuckets import Buckets

STAGES = ("read", "learn", "forecast", "explain", "publish", "checkpoint")


def fill_windows(client: redis.Redis, settings: Settings, series: int, buckets: list[int], seed: int = 0) -> None:
    """Daily windows for ``series`` series: Poisson units with a weekly pattern, orders, revenue, views."""
    rng = np.random.default_rng(seed)
    names = [f"s{i % 10}:sku{i:06d}" for i in range(series)]
    partition = np.array([hash_partition(name, settings.partitions) for name in names])
    level = rng.lognormal(0.5, 1.0, series)
    for bucket in buckets:
        units = rng.poisson(level * (1.3 if bucket % 7 in (5, 6) else 1.0))
        columns = {"units": units, "orders": np.minimum(units, rng.poisson(level)), "revenue": units * 4.5,
                   "views": rng.poisson(level * 12)}
        pipe = client.pipeline(transaction=False)
        for p in range(settings.partitions):
            prefix = RedisWindowStore.partition_prefix(settings.topic_prefix, p)
            rows = np.flatnonzero((partition == p) & (units > 0))
            pipe.zadd(prefix + "buckets", {bucket: bucket})
            for metric, values in columns.items():
                mapping = {names[i]: float(values[i]) for i in rows}
                if mapping:
                    pipe.hset(f"{prefix}w:{bucket}:{metric}", mapping=mapping)
        pipe.execute()
    end_ms = Buckets(settings.bucket_seconds).end_ms(buckets[-1]) + settings.lateness_seconds * 1000
    pipe = client.pipeline(transaction=False)
    for p in range(settings.partitions):
        prefix = RedisWindowStore.partition_prefix(settings.topic_prefix, p)
        for topic in settings.topics.inputs:
            pipe.hset(prefix + "maxts", topic, end_ms)
            pipe.hset(prefix + "off", topic, 0)
    pipe.execute()


def hash_partition(name: str, partitions: int) -> int:
    return int.from_bytes(name.encode()[-4:].rjust(4, b"\0"), "big") % partitions


def cycle(endpoints: infra.Endpoints, home: str, series: int, n_buckets: int,
          explain: bool = False) -> dict[str, float]:
    settings = Settings(home=Path(home), kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis,
                        topic_prefix=f"cycle{series}{'x' if explain else ''}.", retention=60, explain=explain)
    create_topics(endpoints.kafka, settings.topics.all, settings.partitions)
    client = redis.Redis.from_url(endpoints.redis)
    first = Buckets(settings.bucket_seconds).index(int(time.time() * 1000)) - n_buckets
    fill_windows(client, settings, series, list(range(first, first + n_buckets)))
    live = build(settings, endpoints)
    try:
        reports = live.forecaster.step()
    finally:
        live.close()
    last = reports[-1]
    return {**last.seconds, "total": sum(last.seconds.values()), "published": last.published}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--buckets", type=int, default=6, help="buckets filled and closed; the last is timed")
    parser.add_argument("--explain", action="store_true", help="also run each size with TIDECAST_EXPLAIN on")
    args = parser.parse_args()
    console = Console(width=140)
    console.print(f"{os.cpu_count()} cores; load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as home, infra.running(Settings(home=Path(home))) as endpoints:
        results = {(n, explain): cycle(endpoints, home, n, args.buckets, explain)
                   for n in args.series for explain in ((False, True) if args.explain else (False,))}
    threads = os.environ.get("TIDECAST_TORCH_THREADS", "1")
    table = Table(title=f"one bucket-close cycle (steady state, torch threads {threads})")
    table.add_column("series", justify="right")
    for stage in (*STAGES, "total"):
        table.add_column(f"{stage} s", justify="right")
    for (n, explain), seconds in results.items():
        table.add_row(f"{n:,}{' explained' if explain else ''}",
                      *[f"{seconds.get(s, 0.0):.2f}" for s in (*STAGES, "total")])
    console.print(table)
    console.print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
