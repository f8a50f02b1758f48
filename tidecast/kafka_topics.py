"""Create topics with their final partition count (the embedded broker cannot add partitions later)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable


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
