"""``tidecast tail``: follow the forecast topic."""

from __future__ import annotations

import argparse
import time

import orjson
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from tidecast.config import Settings
from tidecast.infra.endpoints import resolve
from tidecast.stream.adapters.kafka_clients import consumer_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tail", help="follow the forecast topic")
    parser.add_argument("--series", help="only this STORE:SKU")
    parser.add_argument("--json", action="store_true", help="print each forecast as one JSON line")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest forecast")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS", help="exit after this long without a forecast")
    parser.set_defaults(handler=run)


def follow(settings: Settings, bootstrap: str, from_beginning: bool, until_idle: float | None):
    """Yield forecast documents as they arrive."""
    consumer = KafkaConsumer(**consumer_config(settings, bootstrap, None))
    topic = settings.topics.forecasts
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*parts)
    last = time.monotonic()
    try:
        while until_idle is None or time.monotonic() - last < until_idle:
            for records in consumer.poll(timeout_ms=200).values():
                last = time.monotonic()
                for record in records:
                    yield orjson.loads(record.value)
    finally:
        consumer.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    endpoints = resolve(settings)
    if not args.json:
        console.print("[dim]series | origin | model | p10/p50/p90 (mean) of the first steps[/]")
    try:
        for doc in follow(settings, endpoints.kafka, args.from_beginning, args.until_idle):
            if args.series and doc["series"] != args.series:
                continue
            if args.json:
                print(orjson.dumps(doc).decode(), flush=True)
                continue
            means = doc.get("mean") or [None] * len(doc["values"])
            steps = "  ".join(
                "/".join(f"{v:.1f}" for v in row) + ("" if m is None else f" ({m:.1f})")
                for row, m in zip(doc["values"][:4], means, strict=False)
            )
            console.print(f"{doc['series']:<24} {doc['origin'][:16]}  v{doc['model_version']:<5} {steps}")
    except KeyboardInterrupt:
        pass
    return 0
