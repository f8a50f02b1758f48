"""``tidecast ingest``: run one ingest worker (start N for N-way parallelism) until stopped (or idle).

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> sub.choices["ingest"].parse_args(["--until-idle", "3"]).until_idle
3.0
"""

from __future__ import annotations

import argparse

from tidecast.commands.metrics_flags import add_metrics_flags, metrics_for
from tidecast.config import Settings
from tidecast.infra.endpoints import resolve


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ingest", help="consume clicks and sales into the Redis feature windows")
    parser.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="exit cleanly once no record arrived for this long"
    )
    add_metrics_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.live import Live
    from rich.text import Text

    from tidecast.console import describe, err
    from tidecast.live import run_ingest

    endpoints = resolve(settings)
    with metrics_for(args, settings) as metrics, \
            Live(Text("joining the ingest workers..."), console=err, transient=False, auto_refresh=False) as screen:

        def on_progress(progress) -> None:
            screen.update(Text(describe(progress)), refresh=True)
            if metrics is not None:
                metrics.ingest(progress)

        run_ingest(settings, endpoints, args.until_idle, on_progress=on_progress)
    return 0
