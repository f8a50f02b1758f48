"""``tidecast explain SERIES ...``: what drives the live model's forecast of each series, read-only.

The median (units per bucket, averaged over the horizon) split into the contributions of the model's input
groups, by integrated gradients against a reference input (docs/decisions.md, "Explanations";
:mod:`tidecast.models.explain`). Like ``whatif``, it resumes the forecaster's checkpoint and windows without
its lease, and learns, writes and publishes nothing.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["explain"].parse_args(["all:85123A", "--json"])
>>> args.series, args.json
(['all:85123A'], True)
"""

from __future__ import annotations

import argparse
import json

from tidecast.commands.forecast_cmd import shard_flag
from tidecast.config import ConfigError, Settings
from tidecast.infra.endpoints import resolve
from tidecast.stream.shards import Shard


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("explain", help="what drives the live forecast of a series, read-only (no learning)")
    parser.add_argument("series", nargs="+", metavar="SERIES", help="series ids, STORE:SKU (e.g. all:85123A)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    parser.add_argument("--shard", type=shard_flag, default=Shard(), metavar="I/N",
                        help="ask forecaster shard I of N (tidecast forecast --shard I/N), which holds the series "
                             "of the partitions p with p %% N == I (default: the one unsharded forecaster)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast import live
    from tidecast.stream.explanations import explain_series
    from tidecast.stream.whatif import WhatIfError

    loop = live.build_read_only(settings, resolve(settings), args.shard)
    try:
        report = explain_series(loop, args.series)
    except WhatIfError as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


def print_report(report: dict) -> None:
    """One table per series: each group's contribution to the median, largest first, and the totals."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(f"model version {report['model_version']}, last closed bucket {report['last_closed'][:16]}; "
                  f"median of the {report['horizon']} buckets from {report['first_bucket'][:16]}, units per bucket")
    for doc in report["series"]:
        table = Table("", "units", "share", title=doc["series"])
        table.add_row("reference (a typical series, no calendar or plans)", f"{doc['reference']:,.2f}", "")
        moved = sum(abs(v) for v in doc["contributions"].values()) or 1.0
        for group, value in sorted(doc["contributions"].items(), key=lambda kv: -abs(kv[1])):
            table.add_row(f"  {group}", f"{value:+,.2f}", f"{abs(value) / moved:.0%}")
        table.add_row("  (path residual)", f"{doc['residual']:+,.2f}", "")
        table.add_row("model median", f"{doc['median']:,.2f}", "", style="bold")
        table.add_row("  calibration", f"{doc['published_median'] - doc['median']:+,.2f}", "")
        table.add_row("published median", f"{doc['published_median']:,.2f}", "", style="bold")
        console.print(table)
