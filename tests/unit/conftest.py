"""The window store of the store-contract tests: one suite, two stores.

``store`` is the in-memory store, then the Redis one and the Redis Cluster one (marked ``integration``: they ask
for the session's embedded servers or cluster, ``tests/conftest.py``) under a key prefix of the test's own,
emptied before and after.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tidecast.config import Endpoints, Settings
from tidecast.stream.adapters.redis_clients import redis_client
from tidecast.stream.adapters.redis_store import RedisWindowStore, delete_keys
from tidecast.stream.window_store import MemoryWindowStore, WindowStore


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration),
                        pytest.param("redis-cluster", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Iterator[WindowStore]:
    if request.param == "memory":
        yield MemoryWindowStore()
        return
    if request.param == "redis":
        servers: Endpoints = request.getfixturevalue("servers")
        url = servers.redis
    else:
        url = request.getfixturevalue("cluster")
    client = redis_client(Settings(), url)
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{request.module.__name__}.{request.node.name}") + "."
    delete_keys(client, prefix)
    yield RedisWindowStore(client, prefix)
    delete_keys(client, prefix)
    client.close()
