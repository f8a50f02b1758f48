"""Publish forecasts to ``<prefix>forecasts``, one message per series, key = series id.

Delivery is at-least-once: :meth:`KafkaForecastSink.publish` returns only when Kafka has acknowledged
every message of the bucket close, and only then does the forecaster checkpoint. Duplicates after a
crash-restart carry the same ``forecast_id``. Kafka transactions are optional (``transactional_id``) for
real Kafka; the embedded broker does not honour ``read_committed``, so correctness never rests on them.

>>> partition_for(b"all:85123A", 12) == partition_for(b"all:85123A", 12) < 12  # one series, one partition
True
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from kafka import KafkaProducer

from tidecast.config import Settings
from tidecast.stream.adapters.kafka_clients import producer_config
from tidecast.stream.forecast_message import ForecastBatch


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a series: a C crc32 of its key (kafka-python's pure-Python murmur2 costs more than
    the rest of a send)."""
    return zlib.crc32(key) % partitions


class KafkaForecastSink:
    """A :class:`~tidecast.stream.ports.ForecastSink` on Kafka."""

    def __init__(self, settings: Settings, bootstrap: str, transactional_id: str | None = None) -> None:
        self.topic = settings.topics.forecasts
        config = producer_config(settings, bootstrap, "tidecast-forecasts")
        if transactional_id:
            config["transactional_id"] = transactional_id
        self.producer = KafkaProducer(**config)
        self.transactional = bool(transactional_id)
        self.partitions = len(self.producer.partitions_for(self.topic))
        if self.transactional:
            self.producer.init_transactions()

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray) -> int:
        if self.transactional:
            self.producer.begin_transaction()
        sent = 0
        send, partitions = self.producer.send, self.partitions
        for key, value in batch.messages(series, values, mean):
            send(self.topic, key=key, value=value, partition=partition_for(key, partitions))
            sent += 1
        if self.transactional:
            self.producer.commit_transaction()
        else:
            self.producer.flush()
        return sent

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()
