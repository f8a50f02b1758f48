"""``tidecast demo``: the whole product on the embedded servers, from a fresh start, in one command.

1. start the embedded broker and valkey-server (tied to this process);
2. a producer process replays a synthetic stream on an accelerated clock (1% malformed, 1% duplicates);
3. this process ingests and forecasts together (``tidecast run``), with a live view;
4. at the end it reads the forecasts back from the topic, scores them prequentially against the actuals
   next to seasonal naive, draws actuals against the forecast band (lowest, median and highest quantile)
   for a few series, and stops the servers.

The live view's labels and point forecast follow ``TIDECAST_QUANTILES``:

>>> board = Board(season=7, quantiles=(0.05, 0.5, 0.95))
>>> board.median, board.render().renderables[0].plain
(1, 'waiting for the consumer group...')
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tidecast import infra
from tidecast.config import Settings
from tidecast.models.quantiles import quantile_labels

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Group, RenderableType

    from tidecast.stream.forecast_message import ForecastBatch

SUMMARY_METRICS = ("mae", "mase", "wrmsse", "wspl", "coverage80")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the whole pipeline end to end on the embedded servers")
    parser.add_argument("--series", type=int, default=100, help="synthetic series (default 100)")
    parser.add_argument("--days", type=int, default=84, help="days of synthetic history (default 84)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="wall seconds the accelerated stream should take (default 30)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(handler=run)


class Board:
    """The live view: ingest, closes, rolling one-step error (tidecast vs seasonal naive), latest forecasts."""

    def __init__(self, season: int, quantiles: Sequence[float], watch: int = 3) -> None:
        from tidecast.models.metrics import median_index

        self.season = season
        self.quantiles = tuple(quantiles)
        self.median = median_index(self.quantiles)
        self.ingest = "waiting for the consumer group..."
        self.close = "no bucket closed yet"
        self.closed = 0
        self.published = 0
        self.errors: deque[tuple[float, float]] = deque(maxlen=7)
        self.previous: dict[str, float] = {}
        self.latest: dict[str, list] = {}
        self.watch = watch

    def on_close(self, panel, batch: ForecastBatch, series: Sequence[str], values: np.ndarray) -> None:
        """Called with every published batch; bucket ``t`` (just closed) is the panel's last column."""
        import numpy as np

        from tidecast.stream.windows import UNITS

        actual = panel.history[:, -1, UNITS]
        if self.previous and panel.history.shape[1] > self.season:
            idx = np.fromiter((panel.index[s] for s in self.previous), np.int64, len(self.previous))
            ours = np.abs(np.fromiter(self.previous.values(), float, len(idx)) - actual[idx]).mean()
            naive = np.abs(panel.history[idx, -1 - self.season, UNITS] - actual[idx]).mean()
            self.errors.append((ours, naive))
        self.previous = dict(zip(series, values[:, 0, self.median].tolist(), strict=True))
        for name, row in zip(series[: self.watch], values[: self.watch], strict=False):
            self.latest[name] = row[:3].tolist()
        self.published += len(series)

    def render(self) -> Group:
        import numpy as np
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        lines: list[RenderableType] = [
            Text(self.ingest),
            Text(f"{self.closed} buckets closed, {self.published:,} forecasts; {self.close}"),
        ]
        if self.errors:
            ours, naive = np.mean(self.errors, axis=0)
            lines.append(Text(f"rolling one-step MAE (last {len(self.errors)} closes): tidecast {ours:.3f} "
                              f"vs seasonal naive {naive:.3f}"))
        if self.latest:
            table = Table("series", f"next bucket {quantile_labels(self.quantiles)}", "+1", "+2",
                          title="latest forecasts")
            for name, rows in self.latest.items():
                table.add_row(name, *["/".join(f"{v:.1f}" for v in row) for row in rows])
            lines.append(table)
        return Group(*lines)


class _TeeSink:
    def __init__(self, inner, forecaster, board: Board) -> None:
        self.inner, self.forecaster, self.board = inner, forecaster, board

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray) -> int:
        sent = self.inner.publish(batch, series, values, mean)
        self.board.on_close(self.forecaster.panel, batch, series, values)
        return sent


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tidecast.console import err

    settings = replace(
        settings, home=settings.home / "demo", kafka_bootstrap=None, redis_url=None,
        retention=max(settings.retention, args.days + 7),
    )
    started = time.monotonic()
    with contextlib.ExitStack() as servers:
        with err.status("starting the embedded broker and valkey-server..."):
            endpoints = servers.enter_context(infra.running(settings))
        summary, chart = _run(args, settings, endpoints)
    summary["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, chart, band_labels(settings.quantiles))
    return 0


def _run(args: argparse.Namespace, settings: Settings, endpoints: infra.Endpoints) -> tuple[dict, Path]:
    from rich.live import Live

    from tidecast.console import describe, describe_close, err
    from tidecast.live import build, run_ingest_and_forecast
    from tidecast.stream.timebuckets import Buckets, season_for

    env = {**os.environ, "TIDECAST_KAFKA_BOOTSTRAP": endpoints.kafka, "TIDECAST_REDIS_URL": endpoints.redis,
           "TIDECAST_TOPIC_PREFIX": settings.topic_prefix}
    speed = args.days * 86_400 / max(args.seconds, 1.0)
    producer = subprocess.Popen(
        [sys.executable, "-m", "tidecast.cli", "produce", "synthetic", "--series", str(args.series),
         "--days", str(args.days), "--seed", str(args.seed), "--malformed", "0.01", "--duplicates", "0.01",
         "--speed", f"{speed:.0f}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    buckets = Buckets(settings.bucket_seconds)
    board = Board(season_for(settings.bucket_seconds), settings.quantiles)
    live = build(settings, endpoints)
    forecaster = live.forecaster
    forecaster.sink = _TeeSink(live.sink, forecaster, board)
    try:
        with Live(board.render(), console=err, auto_refresh=False, transient=False) as screen:

            def on_progress(progress) -> None:
                board.ingest = describe(progress)
                screen.update(board.render(), refresh=True)

            def on_close(report) -> None:
                board.closed += 1
                board.close = describe_close(report, buckets)
                screen.update(board.render(), refresh=True)

            # the producer may pause longer than the idle timeout: a new worker carries on while it runs;
            # Ctrl-C is left to raise, and the finally below stops the producer
            run_ingest_and_forecast(live, until_idle=3.0, on_progress=on_progress, on_close=on_close,
                                    again=lambda: producer.poll() is None, signals=())
        err.print()  # end the live view's last line before the summary (stdout) follows
        if producer.returncode != 0:
            assert producer.stderr is not None  # started with stderr=PIPE
            raise RuntimeError(f"the synthetic producer failed:\n{producer.stderr.read()[-2000:]}")
    finally:
        if producer.poll() is None:
            producer.kill()
        live.close()
    return _evaluate(settings, endpoints, live.store, forecaster, board)


def _evaluate(settings, endpoints, store, forecaster, board) -> tuple[dict, Path]:
    import numpy as np

    from tidecast.consumers.forecast_reader import follow
    from tidecast.stream.backtest.charts import one_step_band, quantile_chart
    from tidecast.stream.backtest.published import score_published
    from tidecast.stream.timebuckets import Buckets, from_iso, season_for
    from tidecast.stream.windows import REVENUE, UNITS

    buckets = Buckets(settings.bucket_seconds)
    first, last = min(store.buckets()), forecaster.last_closed
    columns = last - first + 1
    series = list(forecaster.panel.series)
    index = {name: i for i, name in enumerate(series)}
    actuals = np.zeros((len(series), columns))
    revenue = np.zeros((len(series), columns))
    for column, bucket in enumerate(range(first, last + 1)):
        for name, row in store.read_bucket(bucket).items():
            if name in index:
                actuals[index[name], column] = row[UNITS]
                revenue[index[name], column] = row[REVENUE]
    with np.errstate(invalid="ignore", divide="ignore"):
        prices = np.where(actuals > 0, revenue / actuals, np.nan)
    docs = []
    for doc in follow(settings, endpoints.kafka, from_beginning=True, until_idle=2.0):
        doc["origin_index"] = buckets.index(from_iso(doc["origin"])) - first
        docs.append(doc)
    metrics = score_published(docs, series, actuals, prices, settings.horizon, settings.quantiles,
                              season_for(settings.bucket_seconds), warmup=2 * season_for(settings.bucket_seconds))
    stats = store.stats().counters
    summary = {
        "events": stats["ingested"] + stats["duplicates"] + stats["dlq"],
        "series": len(series),
        "buckets_closed": board.closed,
        "forecasts_published": len(docs),
        "metrics": {model: {k: _round(result[k]) for k in SUMMARY_METRICS} for model, result in metrics.items()},
        "ingest": {k: stats[k] for k in ("ingested", "dlq", "duplicates", "late")},
    }
    top = np.argsort(-actuals.sum(axis=1))[:3]
    panels = []
    for i in top:
        mine = [d for d in docs if d["series"] == series[i]]
        panels.append({"series": series[i], "starts": [buckets.start_ms(b) for b in range(first, last + 1)],
                       "actual": actuals[i], **one_step_band(mine, columns, settings.quantiles)})
    chart = quantile_chart(settings.home / "demo-forecasts.png", panels,
                           f"tidecast demo: actual units vs one-step-ahead {band_labels(settings.quantiles)}",
                           settings.quantiles)
    return summary, chart


def _print_summary(summary: dict, chart: Path, band: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{summary['events']:,}[/] events, {summary['series']} series, "
                  f"{summary['buckets_closed']} buckets closed, {summary['forecasts_published']:,} forecasts "
                  f"published, in {summary['seconds']}s")
    table = Table("model", *SUMMARY_METRICS, title="scored prequentially from the published forecasts")
    for model, values in summary["metrics"].items():
        table.add_row(model, *[f"{values[k]:.3f}" for k in SUMMARY_METRICS])
    console.print(table)
    console.print(f"chart of actuals against {band}: {chart.resolve()}")


def band_labels(quantiles: Sequence[float]) -> str:
    """The lowest, the median and the highest quantile, as the chart draws them.

    >>> band_labels((0.05, 0.1, 0.5, 0.9, 0.95))
    'p5/p50/p95'
    """
    from tidecast.models.quantiles import median_index

    return quantile_labels((quantiles[0], quantiles[median_index(quantiles)], quantiles[-1]))


def _round(value: float) -> float:
    return round(float(value), 4)

