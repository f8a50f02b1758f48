"""``tidecast backtest INPUT``: replay a history file through the live pipeline and score it against baselines.

The engine is :mod:`tidecast.stream.backtest.engine`; this module is wiring: flags, the window store (memory, or
Redis under a unique key prefix that is deleted afterwards), progress on stderr, and the output (a table,
``--json``, ``--report DIR``). See docs/backtesting.md. The engine (torch, river) is imported when the
command runs, not when it is parsed.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> add_parser(sub)
>>> args = sub.choices["backtest"].parse_args(["sales.csv.gz", "--baselines", "naive,tsb", "--horizon", "7"])
>>> parse_baselines(args.baselines), args.horizon, args.store, args.weight_window
(('naive', 'tsb'), 7, 'memory', 28)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tidecast import infra
from tidecast.config import ConfigError, Settings
from tidecast.stream.timebuckets import format_duration, parse_duration

if TYPE_CHECKING:
    from tidecast.stream.backtest.config import BacktestConfig
    from tidecast.stream.backtest.file_chunks import OutOfOrder
    from tidecast.stream.backtest.result import BacktestResult
    from tidecast.stream.window_store import WindowStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "backtest", help="replay a history file through the pipeline; score tidecast against baselines",
        description="Replay INPUT (events, or a daily/weekly panel) on a simulated clock through ingest, windows "
                    "and the forecaster; score every forecast when its bucket closes, for tidecast and the "
                    "baselines, with the same code. Progress goes to stderr.",
    )
    parser.add_argument("input", type=Path, help="JSON lines or CSV, optionally .gz")
    parser.add_argument("--columns", help="FIELD=COLUMN,... as for `produce file`, e.g. "
                                          "ts=InvoiceDate,sku=StockCode,qty=Quantity,price=UnitPrice")
    parser.add_argument("--tz", default="UTC", help="time zone of naive timestamps (default UTC)")
    parser.add_argument("--date-format", metavar="FMT",
                        help="strptime format of times that are not ISO-8601, e.g. %%m/%%d/%%Y (default: detect "
                             "the day/month order of dates such as 11/1/2000 from the whole column)")
    parser.add_argument("--bucket", dest="backtest_bucket", metavar="SIZE",
                        help="bucket size, e.g. 1h, 1d, 1w (default TIDECAST_BUCKET, 1d)")
    parser.add_argument("--known", metavar="FIELD,...",
                        help="fields known ahead, among promo, price, open, event (mapped by --columns): replayed as "
                             "plan events issued H buckets before their bucket, and the model takes them as inputs")
    parser.add_argument("--horizon", type=int, help="buckets forecast at each origin (default TIDECAST_HORIZON, 14)")
    parser.add_argument("--warmup", type=int, help="first origins learned from but not scored (default 2 x horizon)")
    parser.add_argument("--baselines",
                        help="comma list of naive, seasonal_naive, moving_average, croston, tsb, river, lightgbm; "
                             "'none' for tidecast alone (default: all but lightgbm)")
    parser.add_argument("--weight-window", type=int, default=28, metavar="N",
                        help="buckets of sales before each origin that weigh the series in WRMSSE and WSPL "
                             "(revenue; unit sales without prices); default 28, as M5")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write report.md, metrics.json and plots here")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--forecasts", type=Path, metavar="FILE",
                        help="write every scored forecast of every model here, one row per (model, series, origin, "
                             "step): .csv.gz, .csv, or .parquet (needs pyarrow)")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory",
                        help="window store: in memory (default) or Redis (TIDECAST_REDIS_URL or `infra up`)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model (default 0)")
    parser.add_argument("--shards", type=int, default=1, metavar="N",
                        help="replay N forecaster shards (tidecast forecast --shard I/N): one model per shard, each "
                             "learning only its own series, dealt by key over TIDECAST_PARTITIONS (default 1)")
    parser.add_argument("--simulate", metavar="POLICY",
                        help="replay a periodic-review order-up-to policy on every model's stock targets, with lost "
                             "sales, e.g. lead=2,review=1,service=0.90/0.95/0.98 (lead time and review period in "
                             "buckets); reports fill rate, cycle service level, average stock and stock-outs")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the baselines with this one (default 1; 0 = one process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--max-rejected", type=_share, default=DEFAULT_MAX_REJECTED, metavar="SHARE",
                        help="stop (exit 2) when more than this share of the rows is rejected (invalid or late); "
                             f"default {DEFAULT_MAX_REJECTED}, 1 to never stop")
    parser.set_defaults(handler=run)


DEFAULT_MAX_REJECTED = 0.05
"""``--max-rejected``: beyond 5% rejected rows, the scores describe a different data set than the file."""


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share within 0 and 1, such as 0.05; got {text!r}")
    return value


def parse_baselines(text: str) -> tuple[str, ...]:
    """``"naive, tsb"`` -> ``("naive", "tsb")``; ``"none"`` or ``""`` -> ``()``."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    return () if names == ("none",) else names


def backtest_config(args: argparse.Namespace, settings: Settings) -> BacktestConfig:
    """The engine's config from the flags, falling back on the settings (``TIDECAST_*``)."""
    from tidecast.models.replenishment import Policy
    from tidecast.stream.backtest.config import DEFAULT_BASELINES, BacktestConfig
    from tidecast.stream.backtest.forecast_file import forecast_format
    from tidecast.stream.backtest.known_plans import check_known
    from tidecast.stream.events import Bounds

    baselines = DEFAULT_BASELINES if args.baselines is None else parse_baselines(args.baselines)
    forecasts = args.forecasts
    if forecasts is not None:
        try:
            forecast_format(forecasts)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    try:
        bucket = parse_duration(args.backtest_bucket) if args.backtest_bucket else settings.bucket_seconds
    except ValueError as exc:
        raise ConfigError(f"--bucket: {exc}") from None
    horizon = args.horizon if args.horizon is not None else settings.horizon
    try:
        known = check_known(parse_baselines(args.known)) if args.known else ()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        simulate = Policy.parse(args.simulate) if args.simulate else None
    except ValueError as exc:
        raise ConfigError(f"--simulate: {exc}") from None
    try:
        return BacktestConfig(
            bucket_seconds=bucket, horizon=horizon, warmup=args.warmup, baselines=baselines,
            quantiles=settings.quantiles, lateness_seconds=settings.lateness_seconds, retention=settings.retention,
            seed=args.seed, weight_window=args.weight_window, trace=args.report is not None,
            workers=max(0, args.workers), forecasts=forecasts,
            max_rejected=args.max_rejected, bounds=Bounds(settings.max_qty, settings.max_price), known=known,
            shards=args.shards, partitions=settings.partitions, simulate=simulate,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    import torch

    from tidecast.console import err, progress
    from tidecast.producers.files import count_rows, parse_columns, read_events
    from tidecast.stream.backtest.engine import run_rows
    from tidecast.stream.backtest.file_chunks import ROW_BYTES
    from tidecast.stream.backtest.rejects import TooManyRejected
    from tidecast.stream.backtest.report import summary, write_report

    torch.set_num_threads(max(1, args.threads))
    path: Path = args.input
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    config = backtest_config(args, settings)
    columns = parse_columns(args.columns)
    unmapped = [name for name in config.known if name not in columns]
    if unmapped:
        raise ConfigError(f"--known {', '.join(unmapped)}: not mapped by --columns (add e.g. {unmapped[0]}=COLUMN)")
    date_format = resolve_date_format(path, columns, args.date_format)
    try:  # fail now on an unknown format, time zone or column
        next(iter(read_events(path, columns, args.tz, date_format)), None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    total = count_rows(path)

    def open_rows(sorting: bool) -> Iterator[dict | bytes]:
        label = f"{'sorting' if sorting else 'backtest'} {path.name}"
        return progress(read_events(path, columns, args.tz, date_format), label, total=total, unit="rows")

    def on_sort(exc: OutOfOrder) -> None:
        mb = (total or 0) * ROW_BYTES / 1e6
        err.print(f"[yellow]{path.name} is not in time order ({exc}); reading it again, sorted in memory "
                  f"(about {mb:,.0f} MB)[/]")

    try:
        with store_factory(args.store, settings) as new_store:
            result = run_rows(open_rows, config, new_store, on_sort, total_rows=total)
    except TooManyRejected as exc:
        err.print(f"tidecast: {path.name}: {exc}; top reasons:", markup=False, highlight=False, soft_wrap=True)
        err.print("\n".join(exc.tally.lines()), markup=False, highlight=False, soft_wrap=True)
        err.print("check --columns (which column is which event field), --tz (the zone of naive times) and "
                  "--date-format (a strptime format for dates that are not ISO-8601, such as %d-%b-%Y); "
                  f"--max-rejected (now {exc.limit}) sets the share allowed", markup=False, highlight=False,
                  soft_wrap=True)
        return 2
    if not result.counts.get("ingested") and not result.counts.get("panel_zeros"):
        err.print(f"[yellow]no valid row in {path.name} ({result.counts.get('invalid', 0):,} invalid): "
                  "check --columns, --tz and --date-format[/]")
    if result.rejects.total:
        rows = result.counts.get("rows", 0)
        err.print(result.rejects.describe(rows), markup=False, highlight=False, soft_wrap=True)
    if config.forecasts is not None:
        err.print(f"forecasts: {config.forecasts}")
    if args.report is not None:
        written = write_report(result, args.report, title=f"Backtest of {path.name}")
        err.print(f"report: {', '.join(str(p) for p in written)}")
    if args.json:
        print(json.dumps(summary(result)))
    else:
        show(result, path.name)
    return 0


def resolve_date_format(path: Path, columns: dict[str, str], given: str | None) -> str | None:
    """``--date-format``, or the format of the file's numeric dates (one pass, said on stderr); errors as
    :class:`ConfigError`. Shared by ``produce file``."""
    from tidecast.console import err
    from tidecast.producers.files import detect_date_format

    if given is not None:
        return given
    try:
        found = detect_date_format(path, columns)
    except ValueError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    if found is not None:
        err.print(f"{path.name}: times read as {found} (day/month order from the whole column; "
                  "--date-format to say otherwise)", markup=False, highlight=False)
    return found


def show(result: BacktestResult, name: str) -> None:
    """The human output: metrics per model on stdout, the time per stage on stderr."""
    from rich.console import Console
    from rich.table import Table

    from tidecast.console import err
    from tidecast.stream.backtest.comparison import COMPARED, ratios_to_snaive
    from tidecast.stream.backtest.inventory import stock_at_same_fill
    from tidecast.stream.backtest.report import REPORT_METRICS
    cfg = result.config
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table("model", *REPORT_METRICS, title=f"{name}: {result.series:,} series, {result.origins} origins, "
                                           f"{format_duration(cfg.bucket_seconds)} buckets, horizon {cfg.horizon}")
    for model, m in result.models.items():
        table.add_row(model, *(_cell(m.get(k)) for k in REPORT_METRICS))
    console.print(table)
    ratios = ratios_to_snaive(result.models)
    if ratios:
        table = Table("model", *COMPARED, title="ratio to seasonal naive")
        for model, row in ratios.items():
            table.add_row(model, *(_cell(row[k]) for k in COMPARED))
        console.print(table)
    if result.comparison:
        table = Table("metric", "best baseline", "tidecast", "baseline", "mean diff", "95% interval", "verdict",
                      title="tidecast - best baseline, mean over origins (block bootstrap)")
        for metric, c in result.comparison.items():
            table.add_row(metric, c["best_baseline"], _cell(c["tidecast"]), _cell(c["baseline"]),
                          _cell(c["mean_diff"]), f"[{_cell(c['ci95'][0])}, {_cell(c['ci95'][1])}]", c["verdict"])
        console.print(table)
    if result.inventory:
        policy = cfg.simulate
        same = stock_at_same_fill(result.inventory)
        table = Table("model", "service", "fill rate", "cycle service", "avg stock", "stock-outs",
                      "tidecast stock, same fill", "ratio",
                      title=f"replenishment: lead {policy.lead if policy else '?'}, review "
                            f"{policy.review if policy else '?'} (order-up-to, lost sales)")
        for model, rows in result.inventory.items():
            matched = same.get(model, [{}] * len(rows))
            for row, m in zip(rows, matched, strict=True):
                table.add_row(model, f"{row['service']:g}", _cell(row["fill_rate"]), _cell(row["cycle_service"]),
                              _cell(row["avg_stock"]), f"{row['stockouts']:,}", _cell(m.get("tidecast_stock")),
                              _cell(m.get("ratio")))
        console.print(table)
    stages = sorted(result.timings.items(), key=lambda kv: -kv[1])
    err.print(f"{result.seconds:.1f} s: " + ", ".join(f"{k} {v:.1f}" for k, v in stages if v >= 0.05))


def _cell(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


@contextmanager
def store_factory(kind: str, settings: Settings) -> Iterator[Callable[[], WindowStore]]:
    """New window stores on demand: in memory, or scratch stores on Redis (their keys deleted afterwards)."""
    if kind == "memory":
        from tidecast.stream.window_store import MemoryWindowStore

        yield MemoryWindowStore
        return
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import scratch_stores

    url = settings.redis_url
    if url is None:
        found = infra.find(settings)
        url = found.redis if found else None
    if url is None:
        raise ConfigError("--store redis needs TIDECAST_REDIS_URL or the embedded servers (`tidecast infra up`)")
    with scratch_stores(redis_client(settings, url), f"{settings.topic_prefix}backtest.{os.getpid()}.") as new_store:
        yield new_store
