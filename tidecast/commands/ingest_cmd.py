"""``tidecast ingest``: run one ingest worker of the consumer group until stopped (or idle)."""

from __future__ import annotations

import argparse
import signal

from rich.live import Live
from rich.text import Text

from tidecast.config import Settings
from tidecast.console import err
from tidecast.consumers.ingest_worker import IngestProgress, IngestWorker
from tidecast.infra.endpoints import resolve
from tidecast.stream.adapters.redis_store import RedisWindowStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ingest", help="consume clicks and sales into the Redis feature windows")
    parser.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="exit cleanly once no record arrived for this long"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    endpoints = resolve(settings)
    store = RedisWindowStore.from_url(endpoints.redis, settings.topic_prefix)
    with Live(Text("joining the consumer group..."), console=err, transient=False, auto_refresh=False) as live:

        def show(progress: IngestProgress) -> None:
            live.update(Text(describe(progress)), refresh=True)

        worker = IngestWorker(settings, endpoints.kafka, store, on_progress=show)
        previous = {sig: signal.signal(sig, lambda *_: worker.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker.run(until_idle=args.until_idle)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


def describe(progress: IngestProgress) -> str:
    return (
        f"ingest: {progress.records:,} records ({progress.rate:,.0f}/s) - {progress.ingested:,} applied, "
        f"{progress.duplicates:,} duplicates, {progress.late:,} late, {progress.invalid:,} invalid"
    )
