"""The documented commands on real data: `produce file` (Online Retail), `ingest`, `inspect series|stats`."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pipeline import TIDECAST, env_for

from tidecast.config import Settings

pytestmark = pytest.mark.integration

ONLINE_RETAIL = Path(__file__).resolve().parents[3] / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
COLUMNS = "ts=InvoiceDate,sku=StockCode,qty=Quantity,price=UnitPrice"


def tidecast(settings: Settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([*TIDECAST, *args], env=env_for(settings), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def recount_sku(sku: str) -> dict[str, dict]:
    """Daily units, orders, revenue and returns of one StockCode, straight from the CSV."""
    london = ZoneInfo("Europe/London")
    days: dict[str, dict] = defaultdict(lambda: {"units": 0, "orders": 0, "revenue": 0.0, "returns": 0})
    with gzip.open(ONLINE_RETAIL, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["StockCode"] != sku:
                continue
            moment = datetime.fromisoformat(row["InvoiceDate"]).replace(tzinfo=london)
            day = days[moment.astimezone(ZoneInfo("UTC")).date().isoformat()]
            qty, price = int(row["Quantity"]), float(row["UnitPrice"])
            if qty > 0:
                day["units"] += qty
                day["orders"] += 1
                day["revenue"] += qty * price
            else:
                day["returns"] -= qty
    return days


def test_online_retail_loads_with_one_command(settings: Settings) -> None:
    settings = replace(settings, retention=400)  # keep the whole year: 305 trading days
    tidecast(settings, "produce", "file", str(ONLINE_RETAIL), "--columns", COLUMNS, "--tz", "Europe/London")
    tidecast(settings, "ingest", "--until-idle", "3")

    stats = json.loads(tidecast(settings, "inspect", "stats", "--json").stdout)
    assert stats["ingested"] + stats["dlq"] + stats["duplicates"] == 541_909
    assert stats["dlq"] == stats["invalid"] == 2  # the two "Adjust bad debt" rows with a negative price
    assert stats["duplicates"] == 0 and stats["late"] == 0
    assert set(stats["offsets"]) == {f"{settings.topics.sales}:{p}" for p in range(settings.partitions)}
    assert sum(stats["offsets"].values()) == 541_909
    assert all(w.endswith("+00:00") for w in stats["watermarks"].values())

    report = json.loads(tidecast(settings, "inspect", "series", "all:85123A", "--json").stdout)
    assert report["series"] == "all:85123A" and report["bucket_seconds"] == 86_400
    assert report["policy"] == {"series": None, "store": None} and report["inventory"] is None  # none sent
    expected = recount_sku("85123A")
    got = {row["start"][:10]: row for row in report["buckets"]}
    assert got.keys() == expected.keys()
    for day, want in expected.items():
        row = got[day]
        assert (row["units"], row["orders"], row["returns"]) == (want["units"], want["orders"], want["returns"])
        assert row["revenue"] == pytest.approx(want["revenue"], rel=1e-9)
        assert row["views"] == row["add_to_cart"] == 0
        assert row["start"].endswith("T00:00:00+00:00")
    starts = [row["start"] for row in report["buckets"]]
    assert starts == sorted(starts)

    table = tidecast(settings, "inspect", "series", "all:85123A").stdout
    assert "all:85123A" in table


def test_synthetic_produce_and_ingest_commands(settings: Settings) -> None:
    tidecast(settings, "produce", "synthetic", "--series", "20", "--days", "7", "--seed", "3",
             "--malformed", "0.01", "--duplicates", "0.01")
    tidecast(settings, "ingest", "--until-idle", "3")
    stats = json.loads(tidecast(settings, "inspect", "stats", "--json").stdout)
    assert stats["ingested"] > 5000 and stats["dlq"] > 0 and stats["duplicates"] > 0


def test_inspect_rejects_a_malformed_series_id(settings: Settings) -> None:
    result = subprocess.run([*TIDECAST, "inspect", "series", "nocolon"], env=env_for(settings),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "STORE:SKU" in result.stderr


def test_a_checkpoint_of_another_version_is_refused_cleanly(settings: Settings) -> None:
    import redis

    from tidecast.models import checkpoint
    from tidecast.stream.adapters.redis_store import RedisCheckpoints

    key = RedisCheckpoints.key_for(settings.topic_prefix, "all")
    assert settings.redis_url is not None
    redis.Redis.from_url(settings.redis_url).set(key, checkpoint.dumps({"format": "tidecast.forecaster/1"}))
    result = subprocess.run([*TIDECAST, "forecast", "--until-idle", "1"], env=env_for(settings),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.startswith(f"tidecast: Redis key {key} on {settings.redis_url}: ")
    assert "another tidecast version" in result.stderr and "Traceback" not in result.stderr
