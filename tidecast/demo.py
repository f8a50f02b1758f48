"""The demo job behind ``tidecast demo``: a synthetic stream through the live pipeline, then a score and a chart.

- :func:`demo_settings`: the demo's own home (``TIDECAST_HOME/demo``), embedded servers, enough retention;
- :func:`stream`: a producer process replays a synthetic stream on an accelerated clock (1% malformed, 1%
  duplicates) while this process ingests and forecasts together (:func:`tidecast.live.run_ingest_and_forecast`);
- :func:`evaluate`: reads the published forecasts back from the topic, scores them prequentially against the
  actuals in Redis next to seasonal naive, and draws actuals against the forecast band (lowest, median and
  highest of ``TIDECAST_QUANTILES``) for the three best-selling series.

The command (``tidecast/commands/demo_cmd.py``) starts the servers and keeps the flags, the live view and the
summary it prints. numpy, torch, kafka, redis and matplotlib are imported when the job runs.

>>> band_labels((0.05, 0.1, 0.5, 0.9, 0.95))
'p5/p50/p95'
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tidecast.config import Endpoints, Settings
from tidecast.models.quantiles import band_indices, quantile_labels

if TYPE_CHECKING:
    import numpy as np

    from tidecast.consumers.ingest_worker import IngestProgress
    from tidecast.stream.forecast_message import ForecastBatch
    from tidecast.stream.forecaster import CloseReport, Forecaster
    from tidecast.stream.series_panel import SeriesPanel
    from tidecast.stream.stock_targets import StockTargets
    from tidecast.stream.window_store import WindowStore

SUMMARY_METRICS = ("mae", "mase", "wrmsse", "wspl", "coverage80")
"""The metrics of the summary, per model."""

OnPublish = Callable[["SeriesPanel", "ForecastBatch", Sequence[str], "np.ndarray"], None]
"""Called with every published batch: the forecaster's panel (the bucket just closed is its last column), the
batch, its series and their forecast values [N, H, Q]."""


@dataclass
class Streamed:
    """What :func:`stream` leaves for :func:`evaluate`: the window store, the forecaster and how many buckets
    it closed."""

    store: WindowStore
    forecaster: Forecaster
    buckets_closed: int


def band_labels(quantiles: Sequence[float]) -> str:
    """The labels of the band the chart draws (see :func:`~tidecast.models.quantiles.band_indices`)."""
    return quantile_labels(quantiles[i] for i in band_indices(quantiles))


def demo_settings(settings: Settings, days: int) -> Settings:
    """``settings`` for the demo: under ``HOME/demo``, on the embedded servers, keeping all ``days``."""
    return replace(settings, home=settings.home / "demo", kafka_bootstrap=None, redis_url=None,
                   retention=max(settings.retention, days + 7))


class _TeeSink:
    """The forecaster's sink, also handing every published batch to ``on_publish``."""

    def __init__(self, inner, forecaster: Forecaster, on_publish: OnPublish) -> None:
        self.inner, self.forecaster, self.on_publish = inner, forecaster, on_publish

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                plans: Sequence[str | None] | None = None, lead: np.ndarray | None = None,
                targets: StockTargets | None = None, explanations: Sequence[dict] | None = None) -> int:
        sent = self.inner.publish(batch, series, values, mean, plans, lead, targets, explanations)
        self.on_publish(self.forecaster.panel, batch, series, values)
        return sent


def stream(
    settings: Settings,
    endpoints: Endpoints,
    series: int,
    days: int,
    seed: int,
    seconds: float,
    on_progress: Callable[[IngestProgress], None],
    on_close: Callable[[CloseReport], None],
    on_publish: OnPublish,
) -> Streamed:
    """Produce ``series`` synthetic series over ``days`` in about ``seconds`` wall seconds (a child process)
    while ingesting and forecasting them here; RuntimeError if the producer fails. Ctrl-C raises (the
    producer is stopped on the way out)."""
    from tidecast.live import build, run_ingest_and_forecast

    env = {**os.environ, "TIDECAST_KAFKA_BOOTSTRAP": endpoints.kafka, "TIDECAST_REDIS_URL": endpoints.redis,
           "TIDECAST_TOPIC_PREFIX": settings.topic_prefix}
    speed = days * 86_400 / max(seconds, 1.0)
    producer = subprocess.Popen(
        [sys.executable, "-m", "tidecast", "produce", "synthetic", "--series", str(series),
         "--days", str(days), "--seed", str(seed), "--malformed", "0.01", "--duplicates", "0.01",
         "--speed", f"{speed:.0f}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    closed = 0

    def count_close(report: CloseReport) -> None:
        nonlocal closed
        closed += 1
        on_close(report)

    try:
        live = build(settings, endpoints)
    except BaseException:
        producer.kill()
        producer.wait()
        raise
    forecaster = live.forecaster
    forecaster.sink = _TeeSink(live.sink, forecaster, on_publish)
    try:
        # the producer may pause longer than the idle timeout: a new worker carries on while it runs;
        # Ctrl-C is left to raise, and the finally below stops the producer
        run_ingest_and_forecast(live, until_idle=3.0, on_progress=on_progress, on_close=count_close,
                                again=lambda: producer.poll() is None, signals=())
        if producer.returncode != 0:
            assert producer.stderr is not None  # started with stderr=PIPE
            raise RuntimeError(f"the synthetic producer failed:\n{producer.stderr.read()[-2000:]}")
    finally:
        if producer.poll() is None:
            producer.kill()
        live.close()
    return Streamed(live.store, forecaster, closed)


def evaluate(settings: Settings, endpoints: Endpoints, streamed: Streamed) -> tuple[dict, Path]:
    """The summary (events, series, closes, forecasts, metrics per model, ingest counters) and the chart's path.

    The published forecasts are read back from the topic and scored prequentially against the actuals the
    window store holds, with a warm-up of two seasons.
    """
    import numpy as np

    from tidecast.consumers.forecast_reader import follow
    from tidecast.stream.backtest.charts import one_step_band, quantile_chart
    from tidecast.stream.backtest.published import score_published
    from tidecast.stream.timebuckets import Buckets, from_iso, season_for
    from tidecast.stream.windows import REVENUE, UNITS

    store, forecaster = streamed.store, streamed.forecaster
    buckets = Buckets(settings.bucket_seconds)
    first, last = min(store.buckets()), forecaster.last_closed
    if last is None:
        raise RuntimeError("the demo closed no bucket: nothing to score (more --days, or a larger --seconds?)")
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
    season = season_for(settings.bucket_seconds)
    metrics = score_published(docs, series, actuals, prices, settings.horizon, settings.quantiles, season,
                              warmup=2 * season)
    stats = store.stats().counters
    summary = {
        "events": stats["ingested"] + stats["duplicates"] + stats["dlq"],
        "series": len(series),
        "buckets_closed": streamed.buckets_closed,
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


def _round(value: float) -> float:
    return round(float(value), 4)
