"""kafka-python client settings shared by every tidecast consumer and producer, and topic creation.

Large fetches keep the consumer busy. Topics are created with their final partition count (the embedded broker
cannot add partitions later).

Every client gets the settings' SASL/TLS options through :func:`security_config` (``TIDECAST_KAFKA_*``,
docs/operations.md).

Topics tidecast creates keep their records for :func:`topic_retention_ms` (at least 7 days, and twice what the
Redis windows span), so ``tidecast rebuild`` can re-read what the windows hold; at startup the ingest compares
the input topics' ``retention.ms`` with the windows' span (:func:`retention_problems`).

>>> topic_retention_ms(Settings(retention=56, bucket_seconds=86_400)) // 86_400_000  # days
112
>>> retention_problems({"sales": 86_400_000, "clicks": None}, Settings())
['sales keeps records 1d, less than the Redis windows span (56 buckets of 1d)']
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


def consumer_config(settings: Settings, bootstrap: str, group: str | None, *, reset: str) -> dict:
    """Keyword arguments for ``KafkaConsumer``: manual offsets (Redis holds the truth). ``group`` names the
    consumer group the ingest workers commit their offsets under, for lag tools only: they are assigned their
    partitions (:mod:`tidecast.stream.ownership`) and never join the group.

    ``reset`` is kafka-python's ``auto_offset_reset``, stated by every caller: ``"earliest"`` for the readers
    (forecast tail, bench), ``"none"`` for the ingest worker, which seeks every partition itself and must hear
    about a position Kafka no longer holds (``OffsetOutOfRangeError``) instead of being moved silently past
    records retention deleted.
    """
    config = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "client_id": f"tidecast-{group or 'reader'}",
        "enable_auto_commit": False,
        "auto_offset_reset": reset,
        **FETCH,
        **security_config(settings),
    }
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


WEEK_MS = 7 * 86_400_000


def topic_retention_ms(settings: Settings) -> int:
    """``retention.ms`` of the topics tidecast creates: max(7 days, 2 x TIDECAST_RETENTION x TIDECAST_BUCKET), so
    the input topics hold at least twice what the windows span (a rebuild re-reads them; the broker default is
    7 days while 56 daily buckets span 8 weeks)."""
    return max(WEEK_MS, 2 * settings.retention * settings.bucket_seconds * 1000)


def retention_problems(retention_ms: dict[str, int | None], settings: Settings) -> list[str]:
    """Topics of ``retention_ms`` (topic -> retention.ms, None when unknown, -1 for unlimited) that keep less
    than the Redis windows span (``TIDECAST_RETENTION`` x ``TIDECAST_BUCKET``), one sentence each."""
    from tidecast.stream.timebuckets import format_duration

    span_ms = settings.retention * settings.bucket_seconds * 1000
    return [
        f"{topic} keeps records {format_duration(ms // 1000)}, less than the Redis windows span "
        f"({settings.retention} buckets of {format_duration(settings.bucket_seconds)})"
        for topic, ms in retention_ms.items() if ms is not None and 0 <= ms < span_ms
    ]


def _admin(bootstrap: str, settings: Settings | None, timeout: float):
    from kafka.admin import KafkaAdminClient

    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tidecast-admin", request_timeout_ms=10_000,
                                    **(security_config(settings) if settings is not None else {}))
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def topic_retentions(bootstrap: str, topics: Iterable[str], settings: Settings | None = None,
                     timeout: float = 10.0) -> dict[str, int | None]:
    """topic -> ``retention.ms`` as the broker's topic config reports it (None: not reported; the embedded broker
    reports no topic configs)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    names = list(topics)
    admin = _admin(bootstrap, settings, timeout)
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names],
                                       config_filter="all")
    finally:
        admin.close()
    by_topic = found.get("topic", {}) if isinstance(found, dict) else {}
    result: dict[str, int | None] = {}
    for name in names:
        entry = by_topic.get(name, {}).get("retention.ms")
        value = entry.get("value") if isinstance(entry, dict) else entry
        try:
            result[name] = None if value is None else int(value)
        except (TypeError, ValueError):
            result[name] = None
    return result


def earliest_offsets(bootstrap: str, topics: Iterable[str], settings: Settings | None = None) -> dict[str, int]:
    """``topic:partition`` -> the earliest offset the broker still holds, for every partition of ``topics``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**consumer_config(settings or Settings(), bootstrap, None, reset="earliest"))
    try:
        parts = [TopicPartition(topic, p) for topic in topics
                 for p in sorted(consumer.partitions_for_topic(topic) or ())]
        found = consumer.beginning_offsets(parts) if parts else {}
    finally:
        consumer.close()
    return {f"{tp.topic}:{tp.partition}": offset for tp, offset in sorted(found.items())}


def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, timeout: float = 30.0, settings: Settings | None = None,
    retention_ms: int | None = None,
) -> None:
    """Create the missing ones of ``names``; existing topics are left as they are. ``settings`` give the SASL/TLS
    options; without them the broker is a PLAINTEXT one (the embedded broker). ``retention_ms`` sets the new
    topics' ``retention.ms`` (:func:`topic_retention_ms`; None: the broker's default)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, settings, timeout)
    configs = {} if retention_ms is None else {"retention.ms": str(retention_ms)}
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1, topic_configs=configs) for name in names if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()
