"""``tidecast ingest``: run ingest workers (one per process; N with ``--processes N``) until stopped (or idle).

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["ingest"].parse_args(["--until-idle", "3", "--processes", "2", "--metrics-port", "9464"])
>>> args.until_idle, args.processes
(3.0, 2)
>>> for command in child_commands(args):
...     print(*command[3:])   # after `python -m tidecast`
ingest --progress lines --until-idle 3.0 --metrics-port 9464 --metrics-host 127.0.0.1
ingest --progress lines --until-idle 3.0 --metrics-port 9465 --metrics-host 127.0.0.1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from tidecast.commands.metrics_flags import add_metrics_flags, metrics_for
from tidecast.config import Settings
from tidecast.infra.endpoints import resolve

LINE_EVERY = 10.0
"""Seconds between two progress lines with ``--progress lines``."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ingest", help="consume clicks and sales into the Redis feature windows")
    parser.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="exit cleanly once no record arrived for this long"
    )
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="run N worker processes that split the partitions (as N separate `tidecast ingest`); "
                             "with --metrics-port, worker i serves on PORT + i")
    parser.add_argument("--progress", choices=("live", "lines"), default="live",
                        help="a live status line (default) or a plain line every 10 s (logs, containers)")
    add_metrics_flags(parser)
    parser.set_defaults(handler=run)


def child_commands(args: argparse.Namespace) -> list[list[str]]:
    """The command of each of ``--processes`` workers: this one, as one process with plain progress lines."""
    commands = []
    for i in range(args.processes):
        command = [sys.executable, "-m", "tidecast", "ingest", "--progress", "lines"]
        if args.until_idle is not None:
            command += ["--until-idle", str(args.until_idle)]
        if args.metrics_port is not None:
            command += ["--metrics-port", str(args.metrics_port + i), "--metrics-host", args.metrics_host]
        commands.append(command)
    return commands


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast.console import describe, err

    if args.processes < 1:
        err.print("tidecast: --processes must be at least 1")
        return 2
    if args.processes > 1:
        from tidecast.process_group import run_group

        return run_group(child_commands(args), env=settings.environment(os.environ),
                         on_start=lambda pids: err.print(
            f"tidecast: {len(pids)} ingest workers (pids {', '.join(map(str, pids))}); SIGINT/SIGTERM stops them all"))

    from rich.live import Live
    from rich.text import Text

    from tidecast.live import run_ingest

    endpoints = resolve(settings)
    live = args.progress == "live"
    display = Live(Text("joining the ingest workers..."), console=err, transient=False, auto_refresh=False) \
        if live else contextlib.nullcontext()
    with metrics_for(args, settings) as metrics, display as screen:
        last_line = 0.0

        def on_progress(progress) -> None:
            nonlocal last_line
            if screen is not None:
                screen.update(Text(describe(progress)), refresh=True)
            elif time.monotonic() - last_line >= LINE_EVERY:
                err.print(describe(progress))
                last_line = time.monotonic()
            if metrics is not None:
                metrics.ingest(progress)

        progress = run_ingest(settings, endpoints, args.until_idle, on_progress=on_progress)
        if not live:
            err.print(describe(progress))
    return 0
