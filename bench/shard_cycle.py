"""The bucket-close cycle with 1 and 2 forecaster shards at 100k and 1M series, beside one process producing as
many forecast messages, measured in the same run; and the Redis memory the windows and checkpoints take.

    .venv/bin/python bench/shard_cycle.py [--series 100000 1000000] [--shards 1 2] [--buckets 4]

For each size: daily windows of ``--buckets`` buckets are written straight into Redis in the ingest's key
layout (``forecast_cycle.fill_windows``: Poisson units with a weekly pattern, views, orders, revenue), and
Redis's ``used_memory`` is read before and after (windows only: the ingest's dedup sets of open buckets come on
top, see ``bench/scale.py``). Then, in turn:

- the reference: one process sends one close's messages for every series (the sizes ``tidecast`` publishes,
  encoded beforehand) with kafka-python's plain ``send`` loop and tidecast's producer settings, every
  acknowledgement waited for (``publish.send_all``);
- for each shard count K: K processes (spawned, one torch thread each) each run the live forecaster
  (``tidecast.live.build`` with ``--shard i/K``: Redis windows, leased checkpoint, Kafka sink) through the
  first buckets - 1 closes, wait at a barrier, and close the last bucket; the cycle is the time from the
  barrier to the last shard's end of that close (read, learn, forecast, publish, checkpoint), stages per
  shard as reported by the forecaster;
- the reference again (the load may have moved).

Prints the machine's cores and load average, and the checkpoint sizes (``STRLEN``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import redis
from forecast_cycle import STAGES, fill_windows
from publish import close, send_all
from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.config import Settings
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.adapters.redis_store import RedisCheckpoints
from tidecast.stream.shards import Shard
from tidecast.stream.timebuckets import Buckets


def settings_for(endpoints: infra.Endpoints, home: str, series: int) -> Settings:
    return Settings(home=Path(home), kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis,
                    topic_prefix=f"shards{series}.", retention=60)


def shard_close(settings: Settings, endpoints: infra.Endpoints, shard: Shard, barrier, results) -> None:
    """One shard process: catch up to the last bucket, wait for the others, time the last close."""
    from tidecast.live import build

    os.environ["TIDECAST_TORCH_THREADS"] = "1"
    live = build(settings, endpoints, shard)
    forecaster = live.forecaster
    try:
        through = forecaster.closable_through()
        assert through is not None, "no watermark"
        while forecaster.last_closed is None or forecaster.last_closed < through - 1:
            with live.lease.kept():  # as the live loop: a close of a million series outlasts the lease's 30 s
                assert forecaster.step(limit=1), "nothing closed"
        barrier.wait()
        started = time.time()
        with live.lease.kept():
            reports = forecaster.step(limit=1)
        ended = time.time()
    finally:
        live.close()
    assert reports and reports[-1].bucket == through, "the timed close is not the last bucket"
    results.put((shard.index, started, ended, reports[-1].seconds, reports[-1].published))


def sharded_cycle(settings: Settings, endpoints: infra.Endpoints, count: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    processes = [ctx.Process(target=shard_close, args=(settings, endpoints, Shard(i, count), barrier, results))
                 for i in range(count)]
    for process in processes:
        process.start()
    found = [results.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
        assert process.exitcode == 0, f"a shard process failed ({process.exitcode})"
    return {
        "cycle": max(end for _, _, end, _, _ in found) - min(start for _, start, _, _, _ in found),
        "published": sum(n for *_, n in found),
        "stages": {index: seconds for index, _, _, seconds, _ in sorted(found, key=lambda f: f[0])},
    }


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def measure(endpoints: infra.Endpoints, home: str, series: int, shard_counts: list[int], n_buckets: int,
            console: Console) -> dict:
    settings = settings_for(endpoints, home, series)
    create_topics(endpoints.kafka, settings.topics.all, settings.partitions)
    client = redis.Redis.from_url(endpoints.redis)
    client.flushall()
    before = used_memory(client)
    first = Buckets(settings.bucket_seconds).index(int(time.time() * 1000)) - n_buckets
    console.print(f"{series:,} series: filling {n_buckets} buckets of windows...")
    fill_windows(client, settings, series, list(range(first, first + n_buckets)))
    windows = sum(client.hlen(key) for key in client.scan_iter(match=f"{settings.topic_prefix}*:units", count=1000))
    memory = used_memory(client) - before
    batch, names, values, mean = close(series)
    messages = list(batch.messages(names, values, mean))
    console.print(f"{series:,} series: reference send...")
    reference = [send_all(settings, messages)]
    cycles = {}
    for count in shard_counts:
        console.print(f"{series:,} series: {count} shard(s)...")
        cycles[count] = sharded_cycle(settings, endpoints, count)
    reference.append(send_all(settings, messages))
    checkpoints = {Shard(i, c).name: client.strlen(RedisCheckpoints.key_for(settings.topic_prefix, Shard(i, c).name))
                   for c in shard_counts for i in range(c)}
    client.flushall()
    return {"windows": windows, "memory": memory, "reference": reference, "cycles": cycles,
            "checkpoints": checkpoints, "message_bytes": sum(len(v) for _, v in messages) / len(messages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--buckets", type=int, default=4, help="buckets filled and closed; the last is timed")
    args = parser.parse_args()
    console = Console(width=150)
    console.print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    with tempfile.TemporaryDirectory() as home, infra.running(Settings(home=Path(home))) as endpoints:
        results = {n: measure(endpoints, home, n, args.shards, args.buckets, console) for n in args.series}
    table = Table(title="one bucket-close cycle with forecaster shards, beside one process sending as many messages")
    for column in ("series", "reference send s (before, after)", "shards", "cycle s", "cycle / reference",
                   "published", *(f"{stage} s" for stage in STAGES)):
        table.add_column(column, justify="right")
    for n, found in results.items():
        reference = found["reference"]
        for count, cycle in found["cycles"].items():
            stages = cycle["stages"]
            table.add_row(f"{n:,}", " / ".join(f"{s:.2f}" for s in reference), str(count), f"{cycle['cycle']:.2f}",
                          f"{cycle['cycle'] / max(reference):.2f}", f"{cycle['published']:,}",
                          *(" / ".join(f"{stages[i][stage]:.2f}" for i in sorted(stages)) for stage in STAGES))
    console.print(table)
    for n, found in results.items():
        console.print(f"{n:,} series: Redis used_memory +{found['memory'] / 2**20:,.1f} MiB for {found['windows']:,} "
                      f"windows ({found['memory'] / max(found['windows'], 1):.0f} B each, windows only); messages "
                      f"{found['message_bytes']:.0f} B; checkpoints " + ", ".join(
                          f"{name} {size / 2**20:.1f} MiB" for name, size in found["checkpoints"].items()))
    console.print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
