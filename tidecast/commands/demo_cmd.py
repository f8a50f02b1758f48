"""``tidecast demo``: the whole product on the embedded servers, from a fresh start, in one command.

1. start the embedded broker and valkey-server (tied to this process);
2. the demo job (:mod:`tidecast.demo`) streams a synthetic history through ingest and forecast, shown here
   in a live view (:class:`Board`);
3. it scores the published forecasts and draws the chart; this command prints the summary (a table, or
   ``--json``), and the servers stop.

The live view's labels and point forecast follow ``TIDECAST_QUANTILES``:

>>> board = Board(season=7, quantiles=(0.05, 0.5, 0.95))
>>> board.median, board.render().renderables[0].plain
(1, 'waiting for the ingest workers...')
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tidecast import infra
from tidecast.config import Settings
from tidecast.models.quantiles import median_index, quantile_labels

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Group, RenderableType

    from tidecast.stream.forecast_message import ForecastBatch
    from tidecast.stream.series_panel import SeriesPanel


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
        self.season = season
        self.quantiles = tuple(quantiles)
        self.median = median_index(self.quantiles)
        self.ingest = "waiting for the ingest workers..."
        self.close = "no bucket closed yet"
        self.closed = 0
        self.published = 0
        self.errors: deque[tuple[float, float]] = deque(maxlen=7)
        self.previous: dict[str, float] = {}
        self.latest: dict[str, list] = {}
        self.watch = watch

    def on_close(self, panel: SeriesPanel, batch: ForecastBatch, series: Sequence[str], values: np.ndarray) -> None:
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.live import Live

    from tidecast import demo
    from tidecast.console import describe, describe_close, err
    from tidecast.stream.timebuckets import Buckets, season_for

    settings = demo.demo_settings(settings, args.days)
    buckets = Buckets(settings.bucket_seconds)
    board = Board(season_for(settings.bucket_seconds), settings.quantiles)
    started = time.monotonic()
    with contextlib.ExitStack() as servers:
        with err.status("starting the embedded broker and valkey-server..."):
            endpoints = servers.enter_context(infra.running(settings))
        with Live(board.render(), console=err, auto_refresh=False, transient=False) as screen:

            def on_progress(progress) -> None:
                board.ingest = describe(progress)
                screen.update(board.render(), refresh=True)

            def on_close(report) -> None:
                board.closed += 1
                board.close = describe_close(report, buckets)
                screen.update(board.render(), refresh=True)

            streamed = demo.stream(settings, endpoints, args.series, args.days, args.seed, args.seconds,
                                   on_progress=on_progress, on_close=on_close, on_publish=board.on_close)
        err.print()  # end the live view's last line before the summary (stdout) follows
        summary, chart = demo.evaluate(settings, endpoints, streamed)
    summary["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, chart, demo.band_labels(settings.quantiles))
    return 0


def _print_summary(summary: dict, chart: Path, band: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from tidecast.demo import SUMMARY_METRICS as metrics

    console = Console()
    console.print(f"[bold]{summary['events']:,}[/] events, {summary['series']} series, "
                  f"{summary['buckets_closed']} buckets closed, {summary['forecasts_published']:,} forecasts "
                  f"published, in {summary['seconds']}s")
    table = Table("model", *metrics, title="scored prequentially from the published forecasts")
    for model, values in summary["metrics"].items():
        table.add_row(model, *[f"{values[k]:.3f}" for k in metrics])
    console.print(table)
    console.print(f"chart of actuals against {band}: {chart.resolve()}")
