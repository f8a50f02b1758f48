"""``tidecast inspect series|stats``: read the windows and counters back from Redis.

>>> from tidecast.stream.window_store import MemoryWindowStore
>>> stats_report(MemoryWindowStore(), Settings())
{'ingested': 0, 'dlq': 0, 'late': 0, 'duplicates': 0, 'invalid': 0, 'gaps': 0, 'offsets': {}, 'watermarks': {}}
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from tidecast.config import Settings
from tidecast.infra.endpoints import resolve
from tidecast.stream.timebuckets import Buckets, to_iso

if TYPE_CHECKING:
    from tidecast.stream.standing import StandingEntry
    from tidecast.stream.window_store import WindowStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("inspect", help="show a series' windows or the ingest counters")
    what = parser.add_subparsers(dest="what", required=True)
    series = what.add_parser("series", help="every retained bucket of one series with any activity")
    series.add_argument("series", help="STORE:SKU (store 'all' when events carry none)")
    series.add_argument("--json", action="store_true")
    stats = what.add_parser("stats", help="counters, offsets and watermarks")
    stats.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def series_report(store: WindowStore, series: str, settings: Settings) -> dict:
    """The ``inspect series --json`` document: the series' windows, and the ``policy`` events of the series
    and of its store and its ``inventory`` that its stock targets use (null where there is none)."""
    from tidecast.stream.events import INVENTORY_FIELDS, POLICY_FIELDS, split_series

    buckets = Buckets(settings.bucket_seconds)
    rows = [{"start": to_iso(buckets.start_ms(b)), **values} for b, values in store.series_window(series)]
    policies, inventory = store.read_standing("policy"), store.read_standing("inventory").get(series)

    def shown(entry: StandingEntry | None, names: tuple[str, ...]) -> dict | None:
        return None if entry is None else {"ts": to_iso(entry.issued_ms), **dict(zip(names, entry.values, strict=True))}

    return {"series": series, "bucket_seconds": settings.bucket_seconds, "buckets": rows,
            "policy": {"series": shown(policies.get(series), POLICY_FIELDS),
                       "store": shown(policies.get(split_series(series)[0]), POLICY_FIELDS)},
            "inventory": shown(inventory, INVENTORY_FIELDS)}


def stats_report(store: WindowStore, settings: Settings) -> dict:
    """The ``inspect stats --json`` document; watermark = max event time - lateness; ``gaps``: lost state or
    records deleted before they were ingested (``tidecast rebuild``)."""
    stats = store.stats()
    lateness_ms = settings.lateness_seconds * 1000
    return {
        **{name: stats.counters[name] for name in ("ingested", "dlq", "late", "duplicates", "invalid")},
        "gaps": stats.gaps,
        "offsets": dict(sorted(stats.offsets.items(), key=_partition_order)),
        "watermarks": {
            name: to_iso(ms - lateness_ms) for name, ms in sorted(stats.max_ts_ms.items(), key=_partition_order)
        },
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisWindowStore
    from tidecast.stream.events import split_series

    store = RedisWindowStore(redis_client(settings, resolve(settings).redis), settings.topic_prefix)
    if args.what == "series":
        try:
            split_series(args.series)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        report = series_report(store, args.series, settings)
        if args.json:
            print(json.dumps(report))
            return 0
        _print_series(report, args.series)
        return 0
    report = stats_report(store, settings)
    if args.json:
        print(json.dumps(report))
        return 0
    _print_stats(report)
    return 0


def _print_series(report: dict, series: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from tidecast.stream.windows import METRICS

    table = Table("start", *METRICS, title=f"{series} ({len(report['buckets'])} buckets)")
    for row in report["buckets"]:
        table.add_row(row["start"], *[f"{row[m]:,.2f}".rstrip("0").rstrip(".") for m in METRICS])
    console = Console()
    console.print(table)
    for label, entry in (("policy of the series", report["policy"]["series"]),
                         ("policy of its store", report["policy"]["store"]), ("inventory", report["inventory"])):
        if entry is not None:
            console.print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in entry.items() if v is not None),
                          highlight=False)


def _print_stats(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(", ".join(f"{k} {report[k]:,}" for k in ("ingested", "dlq", "late", "duplicates", "invalid", "gaps")))
    table = Table("partition", "next offset", "watermark")
    for name, offset in report["offsets"].items():
        table.add_row(name, f"{offset:,}", report["watermarks"].get(name, "-"))
    console.print(table)


def _partition_order(item: tuple[str, object]) -> tuple[str, int]:
    topic, _, partition = item[0].rpartition(":")
    return topic, int(partition)
