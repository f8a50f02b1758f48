"""Publishing at scale: ways to send one close's forecasts with kafka-python, against the plain send loop.

    .venv/bin/python bench/publish.py [--series 100000] [--repeats 3]

One close's messages (``--series`` forecasts of 14 steps and 3 quantiles, encoded once by
:meth:`ForecastBatch.messages`, about 700 bytes each) are sent to a 12-partition topic on the embedded
broker, each way ``--repeats`` times in turn; every way waits for every acknowledgement (``flush``) and
checks every future, as the forecaster must before it checkpoints. The reference is the plain loop with
tidecast's producer settings (acks=all, lz4, linger 20 ms, 512 KB batches): one ``send`` per message. The
others change one thing: no compression, bigger batches, or the messages split between 2 processes (what
forecaster shards would do). The last rows are tidecast's sink, encoding included: forecasts only, then with
the stock target of each series to ``<prefix>targets`` (twice the messages, as the live forecaster sends
them). Prints the machine's cores and load average.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.config import Settings
from tidecast.models.replenishment import Policy
from tidecast.producers.forecast_publisher import KafkaForecastSink, partition_for
from tidecast.stream.adapters.kafka_clients import create_topics, producer_config
from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.stock_targets import stock_targets

Messages = list[tuple[bytes, bytes]]


def close(series: int) -> tuple[ForecastBatch, list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    values = np.sort(rng.gamma(2.0, 3.0, (series, 14, 3)), axis=-1).astype(np.float32)
    batch = ForecastBatch(86_400, 1_700_000_000_000, (0.1, 0.5, 0.9), 42, 1_700_000_000_000)
    return batch, [f"s{i % 50}:sku{i:07d}" for i in range(series)], values, values[..., 1].copy()


def send_all(settings: Settings, messages: Messages, **overrides: object) -> float:
    """Seconds to send ``messages`` and have every one acknowledged (a fresh producer, connected first)."""
    producer = KafkaProducer(**{**producer_config(settings, settings.kafka_bootstrap or "", "bench"), **overrides})
    topic = settings.topics.forecasts
    partitions = len(producer.partitions_for(topic))
    started = time.perf_counter()
    futures = [producer.send(topic, key=key, value=value, partition=partition_for(key, partitions))
               for key, value in messages]
    producer.flush(timeout=120)
    seconds = time.perf_counter() - started
    assert all(f.is_done and f.exception is None for f in futures), "a send failed"
    producer.close()
    return seconds


def _half(args: tuple[Settings, Messages]) -> float:
    return send_all(*args)


def two_processes(settings: Settings, messages: Messages) -> float:
    """Seconds for two processes, each with its own producer, to send half of ``messages`` each."""
    halves = [messages[0::2], messages[1::2]]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.perf_counter()
        pool.map(_half, [(settings, half) for half in halves])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    console = Console(width=140)
    console.print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    batch, names, values, mean = close(args.series)
    messages = list(batch.messages(names, values, mean))
    size = sum(len(k) + len(v) for k, v in messages) / len(messages)
    with tempfile.TemporaryDirectory() as home, infra.running(Settings(home=Path(home))) as endpoints:
        settings = Settings(home=Path(home), kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis,
                            topic_prefix="publish.")
        create_topics(endpoints.kafka, settings.topics.all, settings.partitions)
        sink = KafkaForecastSink(settings, endpoints.kafka)
        sink.publish(batch, names[:100], values[:100], mean[:100])  # connected, metadata known
        levels = (0.1, 0.5, 0.9, 0.95, 0.98, 0.99)
        with_targets = KafkaForecastSink(settings, endpoints.kafka, targets=True)
        lead = np.cumsum(np.sort(np.random.default_rng(1).gamma(2.0, 3.0, (args.series, 14, len(levels))),
                                 axis=-1), axis=1).astype(np.float32)
        policy = Policy(2, 1, (0.95,))
        with_targets.publish(batch, names[:100], values[:100], mean[:100],
                             targets=stock_targets(names[:100], lead[:100], levels, policy, {}, {}))

        def through_sink() -> float:
            started = time.perf_counter()
            sink.publish(batch, names, values, mean)
            return time.perf_counter() - started

        def through_sink_with_targets() -> float:
            started = time.perf_counter()
            with_targets.publish(batch, names, values, mean,
                                 targets=stock_targets(names, lead, levels, policy, {}, {}))
            return time.perf_counter() - started

        ways: dict[str, Callable[[], float]] = {
            "plain send loop, tidecast's producer settings (reference)": lambda: send_all(settings, messages),
            "no compression": lambda: send_all(settings, messages, compression_type=None),
            "2 MB batches, linger 50 ms": lambda: send_all(settings, messages, batch_size=2 * 1024 * 1024,
                                                           linger_ms=50),
            "2 processes, half each (as 2 shards)": lambda: two_processes(settings, messages),
            "tidecast's sink (KafkaForecastSink.publish, encoding included)": through_sink,
            "tidecast's sink with the stock targets (twice the messages)": through_sink_with_targets,
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.repeats):  # in turn, so that the machine's drift spreads over every way
            for name, way in ways.items():
                times[name].append(way())
        sink.close()
        with_targets.close()
    reference = statistics.median(times[next(iter(ways))])
    table = Table(title=f"{args.series:,} forecast messages ({size:,.0f} bytes each), median of {args.repeats}")
    for column in ("way", "seconds (median)", "all runs", "msg/s", "vs reference"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for name, runs in times.items():
        median = statistics.median(runs)
        table.add_row(name, f"{median:.2f}", " ".join(f"{r:.2f}" for r in runs), f"{args.series / median:,.0f}",
                      f"{median / reference:.2f}")
    console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
