"""``TIDECAST_REDIS_URL`` forms: one server, or a Redis Cluster (``redis+cluster://``); bad ones are refused with
what is wrong, and the password never shows."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import RedisClusterException

from tidecast.config import ConfigError, Settings, redact
from tidecast.stream.adapters.redis_clients import cluster_nodes, redis_client
from tidecast.stream.adapters.retry import OutageError


def test_a_cluster_url_names_its_nodes_user_and_tls() -> None:
    assert cluster_nodes("rediss+cluster://tidecast:s3cret@r1.internal:7000,r2.internal:7000/0") == (
        ["r1.internal:7000", "r2.internal:7000"], "tidecast", "s3cret", True)
    assert cluster_nodes("redis+cluster://127.0.0.1:7000") == (["127.0.0.1:7000"], None, None, False)


@pytest.mark.parametrize(("url", "why"), [
    ("redis+cluster://127.0.0.1:7000/1", "database 0 only"),
    ("redis+cluster://127.0.0.1", "is not HOST:PORT"),
    ("redis+cluster://h:7000,h", "is not HOST:PORT"),
    ("redis+cluster://user:pw@", "names no cluster node"),
])
def test_a_bad_cluster_url_says_what_is_wrong(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        redis_client(Settings(), url)


def test_settings_take_a_cluster_url_and_hide_its_password() -> None:
    url = "redis+cluster://tidecast:s3cret@10.0.0.1:7000,10.0.0.2:7000"
    assert Settings.from_env({"TIDECAST_REDIS_URL": url}).redis_url == url
    assert "s3cret" not in redact(url)
    with pytest.raises(ConfigError, match="redis\\+cluster://"):
        Settings.from_env({"TIDECAST_REDIS_URL": "cluster://10.0.0.1:7000"})


def test_a_cluster_client_that_reaches_no_node_says_where_it_tried() -> None:
    with pytest.raises(RedisClusterException, match=r"127\.0\.0\.1:7000"):  # it learns the slots when built
        redis_client(Settings(), "redis+cluster://127.0.0.1:7000")


def test_a_live_jobs_cluster_client_rides_out_an_unreachable_cluster_then_says_so() -> None:
    settings = Settings(outage_timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(OutageError, match=r"Redis Cluster unreachable for 1s .*127\.0\.0\.1:7000"):
        redis_client(settings, "redis+cluster://127.0.0.1:7000", caller_retries=True)
    assert time.monotonic() - started >= 1.0
