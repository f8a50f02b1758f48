"""``tidecast forecast`` and ``tidecast run``: close buckets, learn, forecast, publish."""

from __future__ import annotations

import argparse
import signal
import time

from rich.live import Live
from rich.text import Text

from tidecast.commands.ingest_cmd import describe
from tidecast.config import Settings
from tidecast.console import err
from tidecast.consumers.ingest_worker import IngestProgress, IngestWorker
from tidecast.infra.endpoints import resolve
from tidecast.live import build
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.forecaster import CloseReport
from tidecast.stream.timebuckets import Buckets, to_iso


def add_parser(sub: argparse._SubParsersAction) -> None:
    forecast = sub.add_parser("forecast", help="close buckets as watermarks pass: learn, forecast, publish")
    forecast.add_argument("--until-idle", type=float, metavar="SECONDS",
                          help="exit once no bucket closed and no watermark moved for this long")
    forecast.set_defaults(handler=run_forecast)
    both = sub.add_parser("run", help="ingest and forecast together (the single-machine default)")
    both.add_argument("--until-idle", type=float, metavar="SECONDS",
                      help="exit after closing every closable bucket once no record arrived for this long")
    both.set_defaults(handler=run_both)


def describe_close(report: CloseReport, buckets: Buckets) -> str:
    s = report.seconds
    learn = report.learn
    return (
        f"closed {to_iso(buckets.start_ms(report.bucket))[:16]}: {report.published:,} forecasts, "
        f"model v{report.model_version}, loss {learn.get('loss', float('nan')):.3f}, "
        f"lr x{learn.get('lr_multiplier', 1.0):.2f}{' DRIFT' if learn.get('drift') else ''} "
        f"(read {s['read']:.2f}s learn {s['learn']:.2f}s forecast {s['forecast']:.2f}s "
        f"publish {s['publish']:.2f}s checkpoint {s['checkpoint']:.2f}s)"
    )


def run_forecast(args: argparse.Namespace, settings: Settings) -> int:
    endpoints = resolve(settings)
    live = build(settings, endpoints)
    store = RedisWindowStore.from_url(endpoints.redis, settings.topic_prefix)
    buckets = Buckets(settings.bucket_seconds)
    stopping = []
    previous = {sig: signal.signal(sig, lambda *_: stopping.append(1)) for sig in (signal.SIGINT, signal.SIGTERM)}
    last_change, last_marks = time.monotonic(), None
    try:
        while not stopping:
            reports = live.forecaster.step(limit=1)
            for report in reports:
                err.print(describe_close(report, buckets))
            marks = store.max_event_times()
            now = time.monotonic()
            if reports or marks != last_marks:
                last_change, last_marks = now, marks
            elif args.until_idle is not None and now - last_change >= args.until_idle:
                break
            if not reports:
                time.sleep(0.2)
    finally:
        live.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_both(args: argparse.Namespace, settings: Settings) -> int:
    endpoints = resolve(settings)
    live = build(settings, endpoints)
    store = RedisWindowStore.from_url(endpoints.redis, settings.topic_prefix)
    buckets = Buckets(settings.bucket_seconds)
    state = {"ingest": "joining the consumer group...", "close": "no bucket closed yet", "closed": 0}

    with Live(Text(""), console=err, auto_refresh=False) as screen:

        def show() -> None:
            screen.update(Text(f"{state['ingest']}\n{state['closed']} buckets closed; last: {state['close']}"),
                          refresh=True)

        def on_progress(progress: IngestProgress) -> None:
            state["ingest"] = describe(progress)
            show()

        def tick() -> None:
            for report in live.forecaster.step():
                state["closed"] += 1
                state["close"] = describe_close(report, buckets)
                show()

        worker = IngestWorker(settings, endpoints.kafka, store, on_progress=on_progress)
        previous = {sig: signal.signal(sig, lambda *_: worker.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker.run(until_idle=args.until_idle, tick=tick)
            tick()
        finally:
            live.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0
