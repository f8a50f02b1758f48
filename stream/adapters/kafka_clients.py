"""kafka-python client settings shared by every tidecast consumer and producer, and topic creation.

Measured on the embedded broker (DESIGN.md): a session timeout of 6 s with a 2 s heartbeat gets a new
group member its partitions in about 3 s instead of 23 s; large fetches keep the consumer busy. Topics are
created with their final partition count (the embedded broker cannot add partitions later).

>>> producer_config("127.0.0.1:9092", "tidecast-test")["acks"]
'all'
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from tidecast.config import Settings

FETCH = {
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 100,
}


def consumer_config(settings: Settings, bootstrap: str, group: str | None) -> dict:
    """Keyword arguments for ``KafkaConsumer``: manual offsets (Redis holds the truth), earliest reset."""
    config = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "client_id": f"tidecast-{group or 'reader'}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        **FETCH,
    }
    if group is not None:
        config["session_timeout_ms"] = settings.session_timeout_ms
        config["heartbeat_interval_ms"] = settings.heartbeat_interval_ms
    return config


def producer_config(bootstrap: str, client_id: str) -> dict:
    """Keyword arguments for ``KafkaProducer``: acks from all replicas, lz4, small linger for batching."""
    return {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "compression_type": "lz4",
        "max_request_size": 8 * 1024 * 1024,
    }


def create_topics(bootstrap: str, names: Iterable[str], partitions: int, timeout: float = 30.0) -> None:
    """Create the missing ones of ``names``; existing topics are left as they are."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tidecast-admin", request_timeout_ms=10_000)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1) for name in names if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()
