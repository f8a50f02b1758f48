"""kafka-python client settings shared by every tidecast consumer and producer, and topic creation.

Measured on the embedded broker (DESIGN.md): a session timeout of 6 s with a 2 s heartbeat gets a new
group member its partitions in about 3 s instead of 23 s; large fetches keep the consumer busy. Topics are
created with their final partition count (the embedded broker cannot add partitions later).

Every client gets the settings' SASL/TLS options through :func:`security_config` (``TIDECAST_KAFKA_*``,
docs/operations.md).

>>> producer_config(Settings(), "127.0.0.1:9092", "tidecast-test")["acks"]
'all'
>>> sasl = Settings(kafka_security=KafkaSecurity("SASL_SSL", "SCRAM-SHA-256", "tidecast", "s3cret"))
>>> sorted(security_config(sasl))
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol', 'ssl_check_hostname']
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from tidecast.config import KafkaSecurity, Settings

FETCH = {
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 100,
}


def security_config(settings: Settings) -> dict[str, object]:
    """kafka-python keyword arguments for the settings' security protocol, SASL and TLS options (the same for
    consumers, producers and the admin client); only ``security_protocol`` when it is PLAINTEXT."""
    security: KafkaSecurity = settings.kafka_security
    config: dict[str, object] = {"security_protocol": security.protocol}
    if security.sasl:
        config["sasl_mechanism"] = security.sasl_mechanism
        config["sasl_plain_username"] = security.sasl_username
        config["sasl_plain_password"] = security.sasl_password
    if security.ssl:
        config["ssl_check_hostname"] = security.ssl_check_hostname
        for key, path in (("ssl_cafile", security.ssl_cafile), ("ssl_certfile", security.ssl_certfile),
                          ("ssl_keyfile", security.ssl_keyfile)):
            if path is not None:
                config[key] = str(path)
    return config


def consumer_config(settings: Settings, bootstrap: str, group: str | None) -> dict:
    """Keyword arguments for ``KafkaConsumer``: manual offsets (Redis holds the truth), earliest reset."""
    config = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "client_id": f"tidecast-{group or 'reader'}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        **FETCH,
        **security_config(settings),
    }
    if group is not None:
        config["session_timeout_ms"] = settings.session_timeout_ms
        config["heartbeat_interval_ms"] = settings.heartbeat_interval_ms
    return config


def producer_config(settings: Settings, bootstrap: str, client_id: str) -> dict:
    """Keyword arguments for ``KafkaProducer``: acks from all replicas, lz4, small linger for batching."""
    return {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "compression_type": "lz4",
        "max_request_size": 8 * 1024 * 1024,
        **security_config(settings),
    }


def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, timeout: float = 30.0, settings: Settings | None = None,
) -> None:
    """Create the missing ones of ``names``; existing topics are left as they are. ``settings`` give the SASL/TLS
    options; without them the broker is a PLAINTEXT one (the embedded broker)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tidecast-admin", request_timeout_ms=10_000,
                                     **(security_config(settings) if settings is not None else {}))
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
