"""Integration fixtures: the embedded broker and valkey-server, started once per test session.

They are tied to the pytest process (parent-death signal), so not even a killed test run leaves them
behind; the session fixture also stops them by PID at the end. Each test gets its own topic prefix, so
its topics and Redis keys are its own.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidecast import infra
from tidecast.config import Settings
from tidecast.stream.adapters.kafka_clients import create_topics

_counter = itertools.count()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[infra.Endpoints]:
    home = tmp_path_factory.mktemp("infra")
    with infra.running(Settings(home=home)) as endpoints:
        yield endpoints


@pytest.fixture
def settings(servers: infra.Endpoints, tmp_path: Path) -> Settings:
    """Settings on the session's servers with fresh topics (12 partitions) under a unique prefix."""
    prefix = f"t{os.getpid()}-{next(_counter)}."
    s = Settings(kafka_bootstrap=servers.kafka, redis_url=servers.redis, home=tmp_path, topic_prefix=prefix)
    create_topics(servers.kafka, s.topics.all, s.partitions)
    return s
