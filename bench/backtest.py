"""Backtest benchmark: the full Online Retail backtest, and an M5-scale synthetic panel with tidecast alone.

Prints, per run: wall seconds, CPU seconds (user + system, this process and its worker processes; on a
shared machine wall time can be far above the CPU time), the time per stage, the peak resident memory
(``resource.getrusage``) and, with ``--tracemalloc``, the peak of Python allocations (slower: tracing).

Targets (docs/backtesting.md): Online Retail, tidecast plus every default baseline, under 60 s on 2 cores;
the M5-scale panel (30,490 series x 730 days) under 10 minutes.

    .venv/bin/python bench/backtest.py                      # both
    .venv/bin/python bench/backtest.py --only retail --workers 0
    .venv/bin/python bench/backtest.py --only m5 --days 120  # a shorter panel

The panel is written once to ``--panel PATH`` (default: a temporary folder), 5 columns per row:
``date,store_id,item_id,units,sell_price``; about 60% of the rows are zeros, as in M5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import torch

from tidecast.producers.files import parse_columns, read_events
from tidecast.stream.backtest.config import DEFAULT_BASELINES, BacktestConfig
from tidecast.stream.backtest.engine import run_rows
from tidecast.stream.backtest.report import comparison_table, overall_table, ratio_table
from tidecast.stream.backtest.result import BacktestResult
from tidecast.stream.window_store import MemoryWindowStore

ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
RETAIL_COLUMNS = "ts=InvoiceDate,sku=StockCode,qty=Quantity,price=UnitPrice"
PANEL_COLUMNS = "ts=date,store=store_id,sku=item_id,qty=units,price=sell_price"
M5_STORES = ("CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3")
M5_ITEMS_PER_STORE = 3049  # 10 x 3049 = 30,490 series, as in M5
M5_START = date(2011, 1, 29)


def write_panel(path: Path, series: int, days: int, seed: int = 0) -> int:
    """A daily panel, one row per series and day (zeros included), intermittent like M5; returns rows.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "panel.csv"
    >>> write_panel(p, series=3, days=2)
    6
    >>> p.read_text().splitlines()[:2]
    ['date,store_id,item_id,units,sell_price', '2011-01-29,CA_1,ITEM_00000,2,3.61']
    """
    rng = np.random.default_rng(seed)
    level = np.exp(rng.normal(-0.6, 1.1, series))  # median about 0.55 units a day
    weekly = np.array([1.0, 0.9, 0.9, 0.95, 1.05, 1.3, 1.25])
    price = np.round(np.exp(rng.normal(1.2, 0.8, series)), 2)
    trend = np.exp(rng.normal(0.0, 0.3, series) / 365)
    prefix = [f"{M5_STORES[i % len(M5_STORES)]},ITEM_{i // len(M5_STORES):05d}" for i in range(series)]
    suffix = [f"{p:.2f}" for p in price]
    with path.open("w") as handle:
        handle.write("date,store_id,item_id,units,sell_price\n")
        for d in range(days):
            day = M5_START + timedelta(days=d)
            rate = level * weekly[day.weekday()] * trend**d
            units = rng.poisson(rate).tolist()
            stamp = day.isoformat()
            handle.write("".join(f"{stamp},{p},{u},{s}\n" for p, u, s in zip(prefix, units, suffix, strict=True)))
    return series * days


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of its largest finished child."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_maxrss / 1024, kids.ru_maxrss / 1024


def timed(label: str, path: Path, columns: str, tz: str, config: BacktestConfig, trace_memory: bool) -> dict:
    """Run one backtest of ``path`` the way ``tidecast backtest`` does; print and return the numbers."""
    print(f"\n== {label}: {path.name}", flush=True)
    if trace_memory:
        tracemalloc.start()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    mapping = parse_columns(columns)
    result: BacktestResult = run_rows(lambda sorting: read_events(path, mapping, tz), config, MemoryWindowStore)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    traced = tracemalloc.get_traced_memory()[1] / 1e6 if trace_memory else None
    if trace_memory:
        tracemalloc.stop()
    rss, child_rss = peak_rss_mb()
    print(overall_table(result))
    for table in (ratio_table(result), comparison_table(result.comparison) if result.comparison else ""):
        if table:
            print("\n" + table)
    stages = sorted(result.timings.items(), key=lambda kv: -kv[1])
    print(f"series {result.series:,}, buckets {result.last_bucket - result.first_bucket + 1}, origins "
          f"{result.origins}, rows {result.counts.get('rows', 0):,}")
    print(f"wall {wall:.1f} s, cpu {cpu:.1f} s (all processes), peak RSS {rss:,.0f} MB (largest worker "
          f"{child_rss:,.0f} MB)" + (f", peak Python allocations {traced:,.0f} MB" if traced else ""))
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages))
    return {"label": label, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_mb": round(rss),
            "worker_peak_rss_mb": round(child_rss), "traced_peak_mb": traced and round(traced),
            "series": result.series, "origins": result.origins,
            "metrics": {name: {k: m.get(k) for k in ("mase", "wrmsse", "wspl")} for name, m in result.models.items()},
            "comparison": result.comparison,
            "timings": {k: round(v, 2) for k, v in stages}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("retail", "m5"))
    parser.add_argument("--workers", type=int, default=1, help="baseline worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--series", type=int, default=len(M5_STORES) * M5_ITEMS_PER_STORE)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--panel", type=Path, help="where to write (or find) the synthetic panel CSV")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--json", type=Path, help="append the results as JSON lines to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, torch threads {args.threads}")
    results = []
    if args.only in (None, "retail"):
        config = BacktestConfig(horizon=14, baselines=DEFAULT_BASELINES, workers=args.workers)
        results.append(timed("Online Retail, tidecast + default baselines", ONLINE_RETAIL, RETAIL_COLUMNS,
                             "Europe/London", config, args.tracemalloc))
    if args.only in (None, "m5"):
        panel = args.panel or Path(tempfile.mkdtemp(prefix="tidecast-bench-")) / "m5_panel.csv"
        if not panel.exists():
            started = time.perf_counter()
            rows = write_panel(panel, args.series, args.days)
            print(f"\nwrote {rows:,} rows to {panel} ({panel.stat().st_size / 1e6:,.0f} MB) in "
                  f"{time.perf_counter() - started:.0f} s")
        config = BacktestConfig(horizon=14, baselines=(), workers=0)
        results.append(timed(f"M5-scale panel ({args.series:,} x {args.days} days), tidecast alone", panel,
                             PANEL_COLUMNS, "UTC", config, args.tracemalloc))
    if args.json:
        with args.json.open("a") as handle:
            for row in results:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
