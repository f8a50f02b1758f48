"""``tidecast tail``: follow the forecast topic.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["tail"].parse_args(["--series", "s1:sku1", "--until-idle", "5"])
>>> args.series, args.until_idle, args.json
('s1:sku1', 5.0, False)
"""

from __future__ import annotations

import argparse

from tidecast.config import Settings
from tidecast.infra.endpoints import resolve


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tail", help="follow the forecast topic")
    parser.add_argument("--series", help="only this STORE:SKU")
    parser.add_argument("--json", action="store_true", help="print each forecast as one JSON line")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest forecast")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS", help="exit after this long without a forecast")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import orjson
    from rich.console import Console

    from tidecast.consumers.forecast_reader import follow
    from tidecast.models.quantiles import quantile_labels

    console = Console()
    endpoints = resolve(settings)
    if not args.json:
        labels = quantile_labels(settings.quantiles)
        console.print(f"[dim]series | origin | model | {labels} (mean) of the first steps[/]")
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
