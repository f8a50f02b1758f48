"""The window store of the store-contract tests: one suite, two stores.

``store`` is the in-memory store, then the Redis one (marked ``integration``: it asks for the session's
embedded servers, ``tests/conftest.py``) under a key prefix of the test's own, emptied before and after.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis

from tidecast.config import Endpoints
from tidecast.stream.adapters.redis_store import RedisWindowStore, delete_keys
from tidecast.stream.window_store import MemoryWindowStore, WindowStore


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Iterator[WindowStore]:
    if request.param == "memory":
        yield MemoryWindowStore()
        return
    servers: Endpoints = request.getfixturevalue("servers")
    client = redis.Redis.from_url(servers.redis)
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{request.module.__name__}.{request.node.name}") + "."
    delete_keys(client, prefix)
    yield RedisWindowStore(client, prefix)
    delete_keys(client, prefix)
    client.close()
