"""Integration fixtures: settings on the session's embedded servers (``servers``, in ``tests/conftest.py``).

Each test gets its own topic prefix, so its topics and Redis keys are its own.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tidecast import infra
from tidecast.config import Settings
from tidecast.stream.adapters.kafka_clients import create_topics

_counter = itertools.count()


@pytest.fixture
def settings(servers: infra.Endpoints, tmp_path: Path) -> Settings:
    """Settings on the session's servers with fresh topics (12 partitions) under a unique prefix."""
    prefix = f"t{os.getpid()}-{next(_counter)}."
    s = Settings(kafka_bootstrap=servers.kafka, redis_url=servers.redis, home=tmp_path, topic_prefix=prefix)
    create_topics(servers.kafka, s.topics.all, s.partitions)
    return s
