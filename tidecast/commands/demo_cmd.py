"""``tidecast demo``: the whole path on the embedded servers, from a fresh start, in one command.

Starts the embedded broker and valkey-server (tied to this process), produces a synthetic stream with
1% malformed messages and 1% re-sent duplicates, ingests it into the Redis windows, prints what landed,
and stops the servers.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace

from rich.console import Console
from rich.table import Table

from tidecast import infra
from tidecast.commands.ingest_cmd import describe
from tidecast.commands.inspect_cmd import series_report, stats_report
from tidecast.commands.produce_cmd import send_synthetic
from tidecast.config import Settings
from tidecast.console import err
from tidecast.consumers.ingest_worker import IngestWorker
from tidecast.producers.synthetic import SyntheticConfig, series_ids
from tidecast.stream.redis_store import RedisWindowStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the pipeline end to end on the embedded servers")
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = replace(settings, home=settings.home / "demo", kafka_bootstrap=None, redis_url=None)
    with err.status("starting the embedded broker and valkey-server..."):
        endpoints = infra.up(settings, owner_pid=os.getpid(), detach=False)
    try:
        config = SyntheticConfig(series=args.series, days=args.days, seed=args.seed)
        sent = send_synthetic(settings, endpoints.kafka, config, malformed=0.01, duplicates=0.01)
        store = RedisWindowStore.from_url(endpoints.redis, settings.topic_prefix)
        with err.status("ingesting...") as status:
            worker = IngestWorker(settings, endpoints.kafka, store, on_progress=lambda p: status.update(describe(p)))
            progress = worker.run(until_idle=2.0)
        stats = stats_report(store, settings)
        summary = {
            "events": sent,
            "series": len(series_ids(config)),
            "ingest_rate": round(progress.rate),
            **{k: stats[k] for k in ("ingested", "dlq", "late", "duplicates", "invalid")},
        }
        if args.json:
            print(json.dumps(summary))
        else:
            _print(summary, [series_report(store, s, settings) for s in series_ids(config)[:3]])
    finally:
        infra.down(settings)
    return 0


def _print(summary: dict, reports: list[dict]) -> None:
    console = Console()
    console.print(" ".join(f"[bold]{k}[/] {v:,}" for k, v in summary.items()))
    for report in reports:
        table = Table("day", "units", "orders", "revenue", "returns", "views", "add_to_cart", title=report["series"])
        for row in report["buckets"][-7:]:
            table.add_row(
                row["start"][:10],
                *[f"{row[k]:,.0f}" for k in ("units", "orders", "revenue", "returns", "views", "add_to_cart")],
            )
        console.print(table)
