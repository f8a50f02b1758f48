"""Scale: ingest throughput of 1 and 2 worker processes beside the raw consume rate, measured in the same run;
end-to-end latency at a steady event rate; Redis memory per series and bucket.

    .venv/bin/python bench/scale.py [--events 500000] [--series 500] [--rate 20000] [--seconds 20]

Produces a synthetic stream (1% malformed, 1% duplicates) to fresh topics on the embedded servers, then reads
it: a bare KafkaConsumer that only touches each record (the raw rate, best of 2, one process), and
``tidecast ingest --processes N`` for N = 1 and 2, each from an empty Redis (the windows, offsets and counters
flushed between runs). A worker run's rate is the records it handled (ingested, duplicate, late or invalid,
from the store's counters, polled every 20 ms) over the time from the first one counted to the last: the
processes' start-up and their joining of the membership are in neither. Prints the machine's cores and load
average, which decide what two processes can gain: every process, the broker and Redis share these cores.

Latency: one ``tidecast ingest`` on fresh topics while this process sends a synthetic stream paced at
``--rate`` events per second for ``--seconds``; every 100th event is a probe whose latency runs from just
before its send to the moment Redis holds its partition's committed offset past it (the windows, the dedup
set and the offset commit in one Lua call, so that is when its window is visible), polled every 2 ms. The
producer's ``linger_ms`` (20 ms, batching) is part of it, as it would be for any producer with that setting.
Redis memory: ``used_memory`` after the throughput run, less the empty server's, per series and per
(series, bucket) window held. (The forecast cycle at 100k and 1M series with shards is not in this script.)
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import redis
from ingest import produce, raw_consume
from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.config import Settings
from tidecast.producers.event_sender import EventSender
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.adapters.redis_store import RedisWindowStore

HANDLED = ("ingested", "duplicates", "late", "invalid")


def ingest_rate(settings: Settings, processes: int, total: int) -> tuple[float, float]:
    """(records per second, seconds) of ``tidecast ingest --processes N`` over ``total`` records."""
    client = redis.Redis.from_url(settings.redis_url or "")
    client.flushdb()
    store = RedisWindowStore(client, settings.topic_prefix)
    command = [sys.executable, "-m", "tidecast", "ingest", "--processes", str(processes), "--until-idle", "3",
               "--progress", "lines"]
    process = subprocess.Popen(command, env=settings.environment(os.environ), stdout=subprocess.DEVNULL,
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


def committed(client: redis.Redis, settings: Settings) -> dict[tuple[str, int], int]:
    """The next offset committed to Redis of every input partition."""
    pipe = client.pipeline(transaction=False)
    for partition in range(settings.partitions):
        pipe.hgetall(RedisWindowStore.partition_prefix(settings.topic_prefix, partition) + "off")
    return {(topic.decode(), partition): int(offset) for partition, offsets in enumerate(pipe.execute())
            for topic, offset in offsets.items()}


def latency(settings: Settings, rate: int, seconds: float, series: int) -> dict[str, float]:
    """Seconds from send to committed in Redis of probe events in a stream paced at ``rate`` events/s."""
    create_topics(settings.kafka_bootstrap or "", settings.topics.all, settings.partitions)
    client = redis.Redis.from_url(settings.redis_url or "")
    process = subprocess.Popen([sys.executable, "-m", "tidecast", "ingest", "--progress", "lines"],
                               env=settings.environment(os.environ), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    probes: list[tuple[float, object]] = []
    found: list[float] = []
    done = threading.Event()

    def poll() -> None:
        pending = 0
        while not done.is_set() or pending < len(probes):
            offsets, now = committed(client, settings), time.perf_counter()
            while pending < len(probes):
                sent_at, future = probes[pending]
                if not future.is_done:  # type: ignore[attr-defined]
                    break
                meta = future.value  # type: ignore[attr-defined]
                if offsets.get((meta.topic, meta.partition), -1) <= meta.offset:
                    break
                found.append(now - sent_at)
                pending += 1
            time.sleep(0.002)

    docs = itertools.islice(generate(SyntheticConfig(series=series, days=120, seed=2)), int(rate * seconds))
    try:
        with EventSender(settings, settings.kafka_bootstrap or "") as sender:
            warm = sender.send(next(docs)).get(timeout=30)  # the worker has joined once this one is committed
            deadline = time.monotonic() + 60
            while committed(client, settings).get((warm.topic, warm.partition), -1) <= warm.offset:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-2000:]
                time.sleep(0.01)
            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            started = time.perf_counter()
            for i, doc in enumerate(docs):
                if i % 100 == 0:
                    ahead = started + i / rate - time.perf_counter()
                    if ahead > 0:
                        time.sleep(ahead)
                    probes.append((time.perf_counter(), sender.send(doc)))
                else:
                    sender.send(doc)
            sent, elapsed = sender.sent - 1, time.perf_counter() - started
        done.set()
        poller.join(timeout=120)
    finally:
        process.terminate()
        process.communicate(timeout=60)
    ms = np.asarray(found) * 1000.0
    return {"rate": sent / elapsed, "probes": len(ms), "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--rate", type=int, default=20_000, help="events per second of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    args = parser.parse_args()
    console = Console()
    console.print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as home, infra.running(Settings(home=Path(home))) as endpoints:
        settings = Settings(home=Path(home), kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis,
                            topic_prefix="scale.", retention=400)
        create_topics(endpoints.kafka, settings.topics.all, settings.partitions)
        empty = redis.Redis.from_url(endpoints.redis).info("memory")["used_memory"]
        sent, produce_s = produce(settings, args.events, args.series)
        console.print(f"produced {sent:,} messages in {produce_s:.1f}s ({sent / produce_s:,.0f}/s)")
        raw = max(raw_consume(settings, sent) for _ in range(2))
        runs = {n: ingest_rate(settings, n, sent) for n in (1, 2)}
        client = redis.Redis.from_url(endpoints.redis)
        memory = client.info("memory")["used_memory"] - empty
        store = RedisWindowStore(client, settings.topic_prefix)
        windows = sum(len(store.read_bucket(bucket)) for bucket in store.buckets())
        held = len({name for bucket in store.buckets() for name in store.read_bucket(bucket)})
        late = latency(dataclasses.replace(settings, topic_prefix="latency."), args.rate, args.seconds, args.series)
    table = Table(title=f"ingest processes: {sent:,} messages, {args.series} series, {settings.partitions} "
                        "partitions per topic")
    for column in ("path", "msg/s", "seconds", "ratio to raw", "ratio to 1 process"):
        table.add_column(column, justify="right")
    table.add_row("raw kafka-python consume (best of 2)", f"{raw:,.0f}", "", "1.00", "")
    for n, (rate, seconds) in runs.items():
        table.add_row(f"tidecast ingest --processes {n}", f"{rate:,.0f}", f"{seconds:.1f}", f"{rate / raw:.2f}",
                      f"{rate / runs[1][0]:.2f}")
    console.print(table)
    console.print(f"end to end (send -> window committed in Redis) at {late['rate']:,.0f} events/s achieved "
                  f"({args.rate:,} asked), {late['probes']:,} probes: p50 {late['p50']:.0f} ms, p99 {late['p99']:.0f} "
                  f"ms, max {late['max']:.0f} ms")
    console.print(f"Redis used_memory after the throughput run, less the empty server's: {memory / 2**20:.1f} MiB; "
                  f"{held:,} series, {windows:,} (series, bucket) windows held: {memory / max(held, 1):,.0f} bytes "
                  f"per series, {memory / max(windows, 1):,.0f} per window")
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
