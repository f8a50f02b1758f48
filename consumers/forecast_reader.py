"""The forecast-topic reader: forecast documents from the Kafka topic, as they arrive or from the beginning.

Used by ``tidecast tail``, by the demo (to score what it published) and by the integration tests. A plain
partition assignment (no consumer group), so reading never moves anyone's offsets.

Example (not run here: it needs a broker)::

    for doc in follow(settings, "127.0.0.1:9092", from_beginning=True, until_idle=2.0):
        print(doc["series"], doc["origin"], doc["values"][0])

>>> waiting(last=10.0, now=11.0, until_idle=2.0), waiting(last=10.0, now=13.0, until_idle=2.0)
(True, False)
>>> waiting(last=10.0, now=1e9, until_idle=None)  # no limit: follow for ever
True
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
from kafka import KafkaConsumer, TopicPartition

from tidecast.config import Settings
from tidecast.stream.adapters.kafka_clients import consumer_config


def waiting(last: float, now: float, until_idle: float | None) -> bool:
    """True while the reader should keep polling: no idle limit, or less than ``until_idle`` s since the last
    record."""
    return until_idle is None or now - last < until_idle


def follow(settings: Settings, bootstrap: str, from_beginning: bool, until_idle: float | None,
           topic: str | None = None) -> Iterator[dict]:
    """Yield forecast documents (decoded JSON) from every partition of the forecast topic (or ``topic``, e.g.
    the targets); from the oldest with ``from_beginning``, else only new ones; stop after ``until_idle``
    seconds without a record."""
    consumer = KafkaConsumer(**consumer_config(settings, bootstrap, None, reset="earliest"))
    topic = topic or settings.topics.forecasts
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*parts)
    last = time.monotonic()
    try:
        while waiting(last, time.monotonic(), until_idle):
            for records in consumer.poll(timeout_ms=200).values():
                last = time.monotonic()
                for record in records:
                    yield orjson.loads(record.value)
    finally:
        consumer.close()
