"""``tidecast whatif FILE``: the live model's forecasts under other plans, next to those under the stored plans.

Its own command rather than ``forecast --what-if``: ``forecast`` is the long-running job that takes the
forecaster's lease, learns and publishes; a what-if is a one-shot, read-only query that may run beside it
(docs/whatif.md).

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["whatif"].parse_args(["plans.jsonl", "--json"])
>>> str(args.file), args.json
('plans.jsonl', True)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tidecast.commands.forecast_cmd import shard_flag
from tidecast.config import ConfigError, Settings
from tidecast.infra.endpoints import resolve
from tidecast.stream.shards import Shard


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("whatif", help="forecast chosen series under other plans, read-only (no learning)")
    parser.add_argument("file", type=Path,
                        help="scenarios: JSON lines, a JSON array or CSV of plan-like rows (docs/whatif.md)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    parser.add_argument("--shard", type=shard_flag, default=Shard(), metavar="I/N",
                        help="ask forecaster shard I of N (tidecast forecast --shard I/N), which holds the series "
                             "of the partitions p with p %% N == I (default: the one unsharded forecaster)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast import live
    from tidecast.stream.scenarios import ScenarioError, parse
    from tidecast.stream.whatif import WhatIfError, to_json, what_if

    try:
        rows = parse(args.file.read_text(encoding="utf-8-sig"), args.file.name)
    except OSError as exc:
        raise ConfigError(f"{args.file}: {exc.strerror or exc}") from None
    except ScenarioError as exc:
        raise ConfigError(f"{args.file}: {exc}") from None
    loop = live.build_read_only(settings, resolve(settings), args.shard)
    try:
        report = to_json(what_if(loop, rows))
    except WhatIfError as exc:
        shard = args.shard
        where = (f" (shard {shard.index}/{shard.count} knows the series of its partitions only)"
                 if shard.count > 1 else "")
        raise ConfigError(f"{args.file}: {exc}{where}") from None
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from tidecast.models.quantiles import interval80_pair, quantile_label

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a file or pipe: no wrapped cells
    pair = interval80_pair(report["quantiles"])
    band = "" if pair is None else "-".join(quantile_label(report["quantiles"][i]) for i in pair)
    console.print(f"model version {report['model_version']}, last closed bucket {report['last_closed']}")
    width = 10 if report["bucket_seconds"] % 86_400 == 0 else 16  # the date, or the date and time
    for scenario in report["scenarios"]:
        for series in scenario["series"]:
            table = Table("bucket", "baseline plan", "scenario plan", "baseline mean", "scenario mean", "change",
                          *([f"baseline {band}", f"scenario {band}"] if pair else []),
                          title=f"scenario {scenario['scenario']!r}: {series['series']}")
            for b in series["buckets"]:
                base, alt, diff = b["baseline"]["mean"], b["scenario"]["mean"], b["difference"]["mean"]
                pct = f" ({diff / base:+.0%})" if base > 0 else ""
                cells = [b["start"][:width], _plan(b["baseline_plan"]), _plan(b["plan"]) if b["changed"] else "=",
                         f"{base:,.1f}", f"{alt:,.1f}", f"{diff:+,.1f}{pct}"]
                if pair:
                    cells += [_band(b["baseline"]["quantiles"], pair), _band(b["scenario"]["quantiles"], pair)]
                table.add_row(*cells, style="bold" if b["changed"] else None)
            console.print(table)


def _plan(plan: dict) -> str:
    """``promo on, open, no event``: a plan in a few words ("-" when nothing is known).

    >>> _plan({"promo": False, "price": 2.5, "open": True, "event": None}), _plan({})
    ('no promo, price 2.5, open, no event', '-')
    """
    words = []
    if "promo" in plan:
        words.append("promo" if plan["promo"] else "no promo")
    if "price" in plan:
        words.append(f"price {plan['price']:g}")
    if "open" in plan:
        words.append("open" if plan["open"] else "closed")
    if "event" in plan:
        words.append(f"event {plan['event']}" if plan["event"] else "no event")
    return ", ".join(words) or "-"


def _band(quantiles: list[float], pair: tuple[int, int]) -> str:
    return f"{quantiles[pair[0]]:,.0f}-{quantiles[pair[1]]:,.0f}"
