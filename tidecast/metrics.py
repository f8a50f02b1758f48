"""Prometheus metrics of the live processes: ``tidecast ingest``, ``forecast`` and ``run`` with ``--metrics-port``.

Each process keeps its own registry and serves it on ``http://HOST:PORT/metrics`` (``--metrics-host``,
default ``127.0.0.1``; ``0.0.0.0`` for a Prometheus on another host or container). The ingest side is fed
from the worker's :class:`~tidecast.consumers.ingest_progress.IngestProgress` (every half second), the
forecaster side from each :class:`~tidecast.stream.forecaster.CloseReport`. docs/operations.md lists every
metric with its meaning; ``tests/integration/test_metrics_scrape.py`` scrapes them all while a stream runs.

>>> from tidecast.consumers.ingest_progress import IngestProgress
>>> metrics = Metrics(bucket_seconds=86_400)
>>> progress = IngestProgress(records=5, ingested=4, invalid=1)
>>> progress.rejected["invalid"] += 1
>>> metrics.ingest(progress)
>>> metrics.registry.get_sample_value("tidecast_ingest_records_total", {"outcome": "ingested"})
4.0
>>> progress.ingested += 3; metrics.ingest(progress)   # counters follow the running totals
>>> metrics.registry.get_sample_value("tidecast_ingest_records_total", {"outcome": "ingested"})
7.0
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tidecast.consumers.ingest_progress import REJECT_KINDS
from tidecast.stream.timebuckets import Buckets

if TYPE_CHECKING:
    from tidecast.consumers.ingest_progress import IngestProgress
    from tidecast.stream.forecaster import CloseReport

OUTCOMES = ("ingested", "duplicates", "late", "invalid")
"""The outcomes of a record read (IngestProgress's counters of the same names)."""
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CLOSE_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
ROLLING_CLOSES = 28
"""Closes over which the accuracy of what was published is averaged."""


class Metrics:
    """One process's metrics on its own registry (see the module docstring)."""

    def __init__(self, bucket_seconds: int, registry: CollectorRegistry | None = None,
                 rolling: int = ROLLING_CLOSES) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.buckets = Buckets(bucket_seconds)
        self.records = Counter("tidecast_ingest_records", "Records read from the input topics, by outcome",
                               ["outcome"], registry=r)
        self.rejected = Counter("tidecast_ingest_rejected", "Records sent to the dead-letter topic, by kind of reason",
                                ["kind"], registry=r)
        self.dlq_failed = Counter("tidecast_ingest_dlq_failed", "Rejects whose DLQ message Kafka refused (counted, "
                                  "skipped)", registry=r)
        self.batch = Histogram("tidecast_ingest_batch_seconds", "Time to classify and bucket one partition's poll "
                               "batch", buckets=SECONDS, registry=r)
        self.commit = Histogram("tidecast_redis_commit_seconds", "Time of one batch's atomic commit to Redis",
                                buckets=SECONDS, registry=r)
        self.lag = Gauge("tidecast_ingest_lag_records", "Records of a held partition not yet read (high watermark "
                         "minus position)", ["topic", "partition"], registry=r)
        self.event_time = Gauge("tidecast_ingest_max_event_time_seconds", "Newest event time ingested from a held "
                                "partition (epoch seconds)", ["topic", "partition"], registry=r)
        self.closes = Counter("tidecast_closes", "Buckets closed by the forecaster", registry=r)
        self.published = Counter("tidecast_forecasts_published", "Forecast messages published", registry=r)
        self.stage = Histogram("tidecast_close_stage_seconds", "Time of each stage of a bucket close", ["stage"],
                               buckets=CLOSE_SECONDS, registry=r)
        self.last_closed = Gauge("tidecast_last_closed_bucket_seconds", "Start of the last closed bucket (epoch "
                                 "seconds)", registry=r)
        self.version = Gauge("tidecast_model_version", "Buckets the model has learned from", registry=r)
        self.loss = Gauge("tidecast_model_loss", "Prequential pinball loss (scaled units) of the labels that matured "
                          "at the last learned close", registry=r)
        self.rate = Gauge("tidecast_model_learning_rate", "The optimizer's learning rate (base rate times the "
                          "drift multiplier)", registry=r)
        self.drift = Counter("tidecast_model_drift_events", "Closes at which the rate controller detected drift",
                             registry=r)
        self.coverage = Gauge("tidecast_published_coverage80", "Share of matured labels inside the published "
                              "[p10, p90], over the recent closes", registry=r)
        self.mase = Gauge("tidecast_published_mase_rolling", "Published median's absolute error over the series' "
                          "mean absolute bucket-to-bucket change, over the recent closes", registry=r)
        self.spl = Gauge("tidecast_published_spl_rolling", "Published quantiles' pinball loss over the same scale "
                         "(unit weights), over the recent closes", registry=r)
        self.labels = Gauge("tidecast_published_labels", "Matured labels the rolling accuracy figures are over",
                            registry=r)
        self._totals: dict[str, int] = {}
        self._progress: IngestProgress | None = None
        self._partitions: set[tuple[str, str]] = set()
        self._scores: deque[dict[str, float]] = deque(maxlen=rolling)
        for outcome in OUTCOMES:  # every series present from the start, at 0
            self.records.labels(outcome)
        for kind in REJECT_KINDS:
            self.rejected.labels(kind)

    # ------------------------------------------------------------------ ingest
    def ingest(self, progress: IngestProgress) -> None:
        """Follow an ingest worker's running totals (a new worker's totals start again from 0)."""
        if progress is not self._progress:
            self._progress, self._totals = progress, {}
        counters = [*((self.records.labels(o), o, getattr(progress, o)) for o in OUTCOMES),
                    *((self.rejected.labels(k), f"kind:{k}", n) for k, n in progress.rejected.items()),
                    (self.dlq_failed, "dlq_failed", progress.dlq_failed)]
        for counter, key, total in counters:
            counter.inc(max(0, total - self._totals.get(key, 0)))
            self._totals[key] = total
        for samples, histogram in ((progress.batch_seconds, self.batch), (progress.commit_seconds, self.commit)):
            while samples:
                histogram.observe(samples.popleft())
        held = {(topic, str(partition)) for topic, partition in (*progress.lag, *progress.watermark_ms)}
        for topic, partition in self._partitions - held:  # given up: not this process's to report
            for gauge in (self.lag, self.event_time):
                with contextlib.suppress(KeyError):
                    gauge.remove(topic, partition)
        self._partitions = held
        for (topic, number), lag in progress.lag.items():
            self.lag.labels(topic, str(number)).set(lag)
        for (topic, number), ts_ms in progress.watermark_ms.items():
            self.event_time.labels(topic, str(number)).set(ts_ms / 1000.0)

    # -------------------------------------------------------------- forecaster
    def close(self, report: CloseReport) -> None:
        """Count one bucket close: its stages' times, what it published, and what the model reported."""
        self.closes.inc()
        self.published.inc(report.published)
        for stage, seconds in report.seconds.items():
            self.stage.labels(stage).observe(seconds)
        self.last_closed.set(self.buckets.start_ms(report.bucket) / 1000.0)
        self.version.set(report.model_version)
        learn = report.learn or {}
        if learn.get("skipped"):
            return
        for gauge, key in ((self.loss, "loss"), (self.rate, "lr")):
            value = learn.get(key)
            if isinstance(value, float | int) and math.isfinite(value):
                gauge.set(value)
        if learn.get("drift"):
            self.drift.inc()
        if learn.get("published"):
            self._scores.append(learn["published"])
            self._rolling()

    def _rolling(self) -> None:
        total = {key: sum(s.get(key, 0.0) for s in self._scores) for key in
                 ("labels", "covered", "scaled", "abs_error", "pinball")}
        self.labels.set(total["labels"])
        if total["labels"]:
            self.coverage.set(total["covered"] / total["labels"])
        if total["scaled"]:
            self.mase.set(total["abs_error"] / total["scaled"])
            self.spl.set(total["pinball"] / total["scaled"])

    # ------------------------------------------------------------------ server
    @contextlib.contextmanager
    def served(self, port: int, host: str = "127.0.0.1") -> Iterator[Metrics]:
        """Serve the registry on ``host:port`` for the ``with`` block (the server stops on the way out)."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
