"""The Prometheus metrics (tidecast/metrics.py) follow the ingest totals and the close reports."""

from __future__ import annotations

import pytest

from tidecast.consumers.ingest_progress import IngestProgress
from tidecast.metrics import Metrics
from tidecast.stream.forecaster import CloseReport


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_ingest_counters_follow_each_worker_and_partitions_given_up_leave() -> None:
    metrics = Metrics(bucket_seconds=86_400)
    first = IngestProgress(records=10, ingested=8, late=2)
    first.rejected["late"] += 2
    first.batch_seconds.extend([0.01, 0.02])
    first.lag = {("sales", 0): 5, ("sales", 1): 0}
    first.watermark_ms = {("sales", 0): 1_700_000_000_000}
    metrics.ingest(first)
    second = IngestProgress(records=3, ingested=3)  # a new worker: its totals start from 0 again
    second.lag = {("sales", 1): 7}
    metrics.ingest(second)
    assert sample(metrics, "tidecast_ingest_records_total", outcome="ingested") == 11
    assert sample(metrics, "tidecast_ingest_rejected_total", kind="late") == 2
    assert sample(metrics, "tidecast_ingest_rejected_total", kind="future") == 0
    assert sample(metrics, "tidecast_ingest_batch_seconds_count") == 2 and not first.batch_seconds  # taken
    assert sample(metrics, "tidecast_ingest_lag_records", topic="sales", partition="1") == 7
    assert sample(metrics, "tidecast_ingest_lag_records", topic="sales", partition="0") is None  # given up
    assert sample(metrics, "tidecast_ingest_max_event_time_seconds", topic="sales", partition="0") is None


def test_close_reports_feed_the_stage_times_the_model_and_the_rolling_accuracy() -> None:
    metrics = Metrics(bucket_seconds=86_400, rolling=2)
    for bucket, covered in ((10, 8.0), (11, 6.0), (12, 10.0)):
        learn = {"loss": 0.5, "lr": 0.002, "drift": bucket == 11,
                 "published": {"labels": 10.0, "covered": covered, "scaled": 10.0, "abs_error": 7.0, "pinball": 2.0}}
        metrics.close(CloseReport(bucket, series=5, published=5, model_version=bucket, learn=learn,
                                  seconds={"learn": 0.2, "publish": 0.01}))
    assert sample(metrics, "tidecast_closes_total") == 3 and sample(metrics, "tidecast_forecasts_published_total") == 15
    assert sample(metrics, "tidecast_close_stage_seconds_count", stage="learn") == 3
    assert sample(metrics, "tidecast_model_drift_events_total") == 1
    assert sample(metrics, "tidecast_last_closed_bucket_seconds") == 12 * 86_400 + metrics.buckets.start_ms(0) / 1000
    assert sample(metrics, "tidecast_published_coverage80") == pytest.approx(16 / 20)  # the last two closes
    assert sample(metrics, "tidecast_published_mase_rolling") == pytest.approx(0.7)
    assert sample(metrics, "tidecast_published_spl_rolling") == pytest.approx(0.2)
