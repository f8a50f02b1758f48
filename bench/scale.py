"""Scale: ingest throughput of 1 and 2 worker processes beside the raw consume rate, measured in the same run.

    .venv/bin/python bench/scale.py [--events 500000] [--series 500]

Produces a synthetic stream (1% malformed, 1% duplicates) to fresh topics on the embedded servers, then reads
it: a bare KafkaConsumer that only touches each record (the raw rate, best of 2, one process), and
``tidecast ingest --processes N`` for N = 1 and 2, each from an empty Redis (the windows, offsets and counters
flushed between runs). A worker run's rate is the records it handled (ingested, duplicate, late or invalid,
from the store's counters, polled every 20 ms) over the time from the first one counted to the last: the
processes' start-up and their joining of the membership are in neither. Prints the machine's cores and load
average, which decide what two processes can gain: every process, the broker and Redis share these cores.
(The forecast-cycle and latency parts of issue 11's bench are not in this script yet.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from ingest import produce, raw_consume
from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.config import Settings
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.adapters.redis_store import RedisWindowStore

HANDLED = ("ingested", "duplicates", "late", "invalid")


def environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TIDECAST_KAFKA_BOOTSTRAP=settings.kafka_bootstrap or "", TIDECAST_REDIS_URL=settings.redis_url or "",
               TIDECAST_TOPIC_PREFIX=settings.topic_prefix, TIDECAST_HOME=str(settings.home),
               TIDECAST_RETENTION=str(settings.retention), TIDECAST_BUCKET=f"{settings.bucket_seconds}s",
               TIDECAST_PARTITIONS=str(settings.partitions))
    return env


def ingest_rate(settings: Settings, processes: int, total: int) -> tuple[float, float]:
    """(records per second, seconds) of ``tidecast ingest --processes N`` over ``total`` records."""
    client = redis.Redis.from_url(settings.redis_url or "")
    client.flushdb()
    store = RedisWindowStore(client, settings.topic_prefix)
    command = [sys.executable, "-m", "tidecast.cli", "ingest", "--processes", str(processes), "--until-idle", "3",
               "--progress", "lines"]
    process = subprocess.Popen(command, env=environment(settings), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    first = last = None
    handled = 0
    while handled < total:
        if process.poll() is not None:
            raise RuntimeError(f"ingest ended after {handled:,} of {total:,} records: {process.stderr.read()[-2000:]}")
        counters = store.stats().counters
        handled = sum(counters.get(name, 0) for name in HANDLED)
        now = time.perf_counter()
        if handled and first is None:
            first = now
        last = now
        time.sleep(0.02)
    process.communicate(timeout=120)
    assert first is not None and last is not None
    return total / (last - first), last - first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--series", type=int, default=500)
    args = parser.parse_args()
    console = Console()
    console.print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as home, infra.running(Settings(home=Path(home))) as endpoints:
        settings = Settings(home=Path(home), kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis,
                            topic_prefix="scale.", retention=400)
        create_topics(endpoints.kafka, settings.topics.all, settings.partitions)
        sent, produce_s = produce(settings, args.events, args.series)
        console.print(f"produced {sent:,} messages in {produce_s:.1f}s ({sent / produce_s:,.0f}/s)")
        raw = max(raw_consume(settings, sent) for _ in range(2))
        runs = {n: ingest_rate(settings, n, sent) for n in (1, 2)}
    table = Table(title=f"ingest processes: {sent:,} messages, {args.series} series, {settings.partitions} "
                        "partitions per topic")
    for column in ("path", "msg/s", "seconds", "ratio to raw", "ratio to 1 process"):
        table.add_column(column, justify="right")
    table.add_row("raw kafka-python consume (best of 2)", f"{raw:,.0f}", "", "1.00", "")
    for n, (rate, seconds) in runs.items():
        table.add_row(f"tidecast ingest --processes {n}", f"{rate:,.0f}", f"{seconds:.1f}", f"{rate / raw:.2f}",
                      f"{rate / runs[1][0]:.2f}")
    console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
