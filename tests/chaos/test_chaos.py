"""The chaos run at CI size (tests/chaos/harness.py :data:`~harness.CI`): about 50k events with clicks and
sales, 2,000 hostile messages, 5 SIGKILLed ingest workers, 2 SIGKILLed forecasters, Redis and the broker each
paused 12 s, and one FLUSHALL followed by ``tidecast rebuild``, on servers of its own. Its kill cases
(:data:`~harness.KILLS`) run again with the state on the session's three-master Redis Cluster.
``bench/chaos.py`` runs the full plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import CI, KILLS, run

from tidecast.config import DLQ_MAX_BYTES

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)  # ~95 s on a quiet machine
def test_chaos_loses_doubles_and_crashes_nothing(tmp_path: Path) -> None:
    report = run(CI, tmp_path)
    assert report.events > 40_000 and report.hostile_sent == CI.fuzz
    assert report.kills == {"ingest": CI.ingest_kills, "forecaster": CI.forecaster_kills}
    assert len(report.faults) == 3
    assert report.crashes == []
    assert report.ingested == report.events + report.plans_sent
    assert not any(report.lost.values()) and not any(report.doubled.values()), (report.lost, report.doubled)
    assert report.windows_differing == 0
    assert report.plans > 100 and report.plans_wrong == 0 and report.plans_unexpected == 0
    assert report.hostile_missing_from_dlq == 0 and report.dlq_without_reason == 0
    assert report.dlq_largest_bytes <= DLQ_MAX_BYTES * 4 // 3 + 1400  # the documented bound (docs/events.md)
    assert report.origins == CI.days - 1 and report.forecasts_missing == 0
    assert report.ids_per_forecast_max == 1
    assert report.stopped_on_lost_state >= 1
    assert report.sigterm_nonzero == [] and report.sigterm_exit_s < 10
    assert report.ok


@pytest.mark.timeout(900)
def test_kills_on_a_redis_cluster_lose_and_double_nothing(tmp_path: Path, cluster: str) -> None:
    report = run(KILLS, tmp_path, cluster=cluster)
    assert report.kills == {"ingest": KILLS.ingest_kills, "forecaster": KILLS.forecaster_kills}
    assert report.faults == [] and report.crashes == []
    assert report.ingested == report.events + report.plans_sent
    assert not any(report.lost.values()) and not any(report.doubled.values()), (report.lost, report.doubled)
    assert report.windows_differing == 0 and report.plans_wrong == 0
    assert report.hostile_missing_from_dlq == 0
    assert report.origins == KILLS.days - 1 and report.forecasts_missing == 0
    assert report.ids_per_forecast_max == 1
    assert report.ok
