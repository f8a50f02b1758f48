"""Settings from TIDECAST_* variables: defaults, parsing and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidecast.cli import build_parser, settings_from
from tidecast.config import ConfigError, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.bucket_seconds, s.lateness_seconds, s.retention, s.partitions) == (86_400, 7_200, 56, 12)
    assert s.topics.all == ("tidecast.clicks", "tidecast.sales", "tidecast.plans", "tidecast.forecasts", "tidecast.dlq",
                            "tidecast.targets")
    assert (s.lead_time, s.review, s.service_level) == (2, 1, 0.95) and s.policy.protection == 3
    assert s.home == Path(".tidecast") and s.embedded and s.session_timeout_ms == 6000


def test_every_variable_is_read() -> None:
    s = Settings.from_env({
        "TIDECAST_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TIDECAST_REDIS_URL": "redis://127.0.0.1:6379/1",
        "TIDECAST_HOME": "/tmp/x", "TIDECAST_TOPIC_PREFIX": "shop-a.", "TIDECAST_BUCKET": "1h",
        "TIDECAST_LATENESS": "15m", "TIDECAST_RETENTION": "168", "TIDECAST_PARTITIONS": "3",
        "TIDECAST_LEAD_TIME": "0", "TIDECAST_REVIEW": "7", "TIDECAST_SERVICE_LEVEL": "0.98",
    })
    assert s.kafka_bootstrap == "127.0.0.1:9092" and s.redis_url == "redis://127.0.0.1:6379/1" and not s.embedded
    assert (s.home, s.topics.sales, s.bucket_seconds, s.lateness_seconds) == (Path("/tmp/x"), "shop-a.sales", 3600, 900)
    assert (s.retention, s.partitions) == (168, 3)
    assert (s.policy.lead, s.policy.review, s.policy.services) == (0, 7, (0.98,))


@pytest.mark.parametrize(("var", "value"), [
    ("TIDECAST_BUCKET", "daily"), ("TIDECAST_BUCKET", "10s"), ("TIDECAST_LATENESS", "soon"),
    ("TIDECAST_RETENTION", "0"), ("TIDECAST_RETENTION", "many"), ("TIDECAST_PARTITIONS", "-2"),
    ("TIDECAST_TOPIC_PREFIX", "bad{prefix}"), ("TIDECAST_REDIS_URL", "localhost:6379"),
    ("TIDECAST_LEAD_TIME", "-1"), ("TIDECAST_LEAD_TIME", "14"), ("TIDECAST_REVIEW", "0"),
    ("TIDECAST_SERVICE_LEVEL", "95"), ("TIDECAST_SERVICE_LEVEL", "high"),
])
def test_invalid_values_fail_naming_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: value})


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDECAST_BUCKET", "1h")
    monkeypatch.setenv("TIDECAST_RETENTION", "10")
    args = build_parser().parse_args(["--bucket", "7d", "inspect", "stats"])
    s = settings_from(args)
    assert s.bucket_seconds == 604_800 and s.retention == 10


def test_bad_flag_names_the_flag() -> None:
    args = build_parser().parse_args(["--lateness", "later", "inspect", "stats"])
    with pytest.raises(ConfigError, match="--lateness"):
        settings_from(args)
