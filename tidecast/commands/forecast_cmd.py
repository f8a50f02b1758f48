"""``tidecast forecast`` and ``tidecast run``: close buckets, learn, forecast, publish.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> sorted(sub.choices), sub.choices["run"].parse_args(["--until-idle", "6"]).until_idle
(['forecast', 'run'], 6.0)
>>> sub.choices["forecast"].parse_args(["--shard", "1/2"]).shard
Shard(index=1, count=2)
"""

from __future__ import annotations

import argparse

from tidecast.commands.metrics_flags import add_metrics_flags, metrics_for
from tidecast.config import Settings
from tidecast.infra.endpoints import resolve
from tidecast.stream.shards import Shard


def shard_flag(text: str) -> Shard:
    """``--shard I/N`` as an argparse type: a bad value is a usage error that says what is wrong."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--shard {text!r}: ")) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    forecast = sub.add_parser("forecast", help="close buckets as watermarks pass: learn, forecast, publish")
    forecast.add_argument("--until-idle", type=float, metavar="SECONDS",
                          help="exit once no bucket closed and no watermark moved for this long")
    forecast.add_argument("--shard", type=shard_flag, default=Shard(), metavar="I/N",
                          help="be shard I of N (from 0): forecast the series of the input partitions p with "
                               "p %% N == I, with its own checkpoint and lease (default 0/1: every series)")
    forecast.set_defaults(handler=run_forecast)
    both = sub.add_parser("run", help="ingest and forecast together (the single-machine default)")
    both.add_argument("--until-idle", type=float, metavar="SECONDS",
                      help="exit after closing every closable bucket once no record arrived for this long")
    both.set_defaults(handler=run_both)
    for parser in (forecast, both):
        parser.add_argument("--allow-empty-buckets", type=int, default=0, metavar="N",
                            help="close up to N more empty buckets in a row than TIDECAST_MAX_EMPTY allows "
                                 "(after the forecaster held and you checked the input)")
        add_metrics_flags(parser)


def run_forecast(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast import live
    from tidecast.console import describe_close, err
    from tidecast.stream.timebuckets import Buckets

    buckets = Buckets(settings.bucket_seconds)
    with metrics_for(args, settings) as metrics, live.build(settings, resolve(settings), args.shard) as forecaster:

        def on_close(report) -> None:
            err.print(describe_close(report, buckets))
            if metrics is not None:
                metrics.close(report)

        forecaster.forecaster.allow_empty(args.allow_empty_buckets)
        live.run_forecast(forecaster, args.until_idle, on_close=on_close)
    return 0


def run_both(args: argparse.Namespace, settings: Settings) -> int:
    from rich.live import Live
    from rich.text import Text

    from tidecast import live
    from tidecast.console import describe, describe_close, err
    from tidecast.stream.timebuckets import Buckets

    buckets = Buckets(settings.bucket_seconds)
    state = {"ingest": "joining the ingest workers...", "close": "no bucket closed yet"}
    closed = 0
    with metrics_for(args, settings) as metrics, live.build(settings, resolve(settings)) as forecaster, \
            Live(Text(""), console=err, auto_refresh=False) as screen:

        def show() -> None:
            screen.update(Text(f"{state['ingest']}\n{closed} buckets closed; last: {state['close']}"),
                          refresh=True)

        def on_progress(progress) -> None:
            state["ingest"] = describe(progress)
            show()
            if metrics is not None:
                metrics.ingest(progress)

        def on_close(report) -> None:
            nonlocal closed
            closed += 1
            state["close"] = describe_close(report, buckets)
            show()
            if metrics is not None:
                metrics.close(report)

        forecaster.forecaster.allow_empty(args.allow_empty_buckets)
        live.run_ingest_and_forecast(forecaster, args.until_idle, on_progress=on_progress, on_close=on_close)
    return 0
