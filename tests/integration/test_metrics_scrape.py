"""``tidecast run --metrics-port`` serves every metric docs/operations.md lists, with live values, while a stream
runs; and ``tidecast ingest`` serves the ingest ones."""

from __future__ import annotations

import itertools
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from pipeline import TIDECAST, env_for, produce

from tidecast.config import Settings
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate

pytestmark = pytest.mark.integration

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented() -> list[str]:
    """The metric names of docs/operations.md's metrics table (first column), as a scrape shows them."""
    section = OPERATIONS.read_text().split("\n## Metrics", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(tidecast_[a-z0-9_]+)`", section, re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """Every sample of the page: ``name{labels}`` -> value; empty while nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: float(value) for key, value in samples}


def value(samples: dict[str, float], name: str) -> float | None:
    """The sum of a metric's samples (a histogram's ``_count``), None when the page does not show it."""
    wanted = re.compile(rf"^{name}(_count)?(\{{.*\}})?$")
    found = [v for key, v in samples.items() if wanted.match(key)]
    return sum(found) if found else None


def stream(settings: Settings, days: int) -> tuple[int, int]:
    """Produce a synthetic stream with 1% malformed messages and 1% duplicates; (records sent, malformed)."""
    docs = itertools.islice(generate(SyntheticConfig(series=60, days=days, seed=5)), 40_000)
    sent = produce(settings, with_faults(docs, malformed=0.01, duplicates=0.01, seed=5))
    return len(sent["valid"]) + sent["duplicates"] + len(sent["malformed"]), len(sent["malformed"])


def watch(process: subprocess.Popen, port: int, done, timeout: float = 240) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    samples: dict[str, float] = {}
    try:
        while not done(samples):
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"after {timeout:g} s the page shows {sorted(samples)[:40]}"
            time.sleep(0.5)
            samples = scrape(port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    return samples


def test_run_serves_every_documented_metric_with_live_values(settings: Settings) -> None:
    names = documented()
    assert len(names) >= 15, names
    records, _ = stream(settings, days=40)
    port = free_port()
    process = subprocess.Popen([*TIDECAST, "run", "--metrics-port", str(port), "--until-idle", "60"],
                               env=env_for(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def done(samples: dict[str, float]) -> bool:  # every metric, the whole stream read, published accuracy
        return (all(value(samples, n) is not None for n in names)
                and value(samples, "tidecast_ingest_records_total") == records
                and (value(samples, "tidecast_published_labels") or 0) > 0)

    samples = watch(process, port, done)
    assert samples['tidecast_ingest_rejected_total{kind="invalid"}'] > 0  # the malformed messages
    assert value(samples, "tidecast_ingest_lag_records") is not None
    assert value(samples, "tidecast_closes_total") >= 15 and value(samples, "tidecast_forecasts_published_total") > 0
    assert value(samples, "tidecast_close_stage_seconds") >= 15
    assert samples["tidecast_model_learning_rate"] > 0 and samples["tidecast_model_version"] >= 15
    assert 0.0 <= samples["tidecast_published_coverage80"] <= 1.0 and samples["tidecast_published_mase_rolling"] > 0


def test_ingest_serves_the_ingest_metrics(settings: Settings) -> None:
    records, malformed = stream(settings, days=10)
    port = free_port()
    process = subprocess.Popen([*TIDECAST, "ingest", "--metrics-port", str(port), "--until-idle", "60"],
                               env=env_for(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples = watch(process, port, lambda s: value(s, "tidecast_ingest_records_total") == records
                    and (value(s, "tidecast_redis_commit_seconds") or 0) > 0
                    and value(s, "tidecast_ingest_max_event_time_seconds") is not None)  # refreshed every second
    assert samples['tidecast_ingest_rejected_total{kind="invalid"}'] == malformed > 0
    assert value(samples, "tidecast_ingest_batch_seconds") > 0
    assert value(samples, "tidecast_ingest_max_event_time_seconds") > 0
