"""Send events to their topics, keyed by series so one series stays in one partition: clicks to the clicks
topic; plans, policies and inventories to the plans topic (a store's plan or policy keyed by the store); the
rest to sales.

>>> route({"type": "click", "sku": "A", "store": "s1"}, Topics("tidecast."))
('tidecast.clicks', b's1:A')
>>> route({"type": "sale", "sku": "A"}, Topics("tidecast."))
('tidecast.sales', b'all:A')
>>> route({"type": "plan", "store": "s1"}, Topics("tidecast."))
('tidecast.plans', b's1')
>>> route({"type": "inventory", "store": "s1", "sku": "A"}, Topics("tidecast."))
('tidecast.plans', b's1:A')
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from tidecast.config import Settings, Topics
from tidecast.stream.adapters.kafka_clients import producer_config
from tidecast.stream.events import DEFAULT_STORE, series_id

PLANS_TOPIC_TYPES = ("plan", "policy", "inventory")
"""Event types sent to ``<prefix>plans``: what is known ahead, and the standing values of the stock targets."""


def route(doc: dict, topics: Topics) -> tuple[str, bytes | None]:
    """The topic and key for an event object (see the module docstring)."""
    kind = doc.get("type")
    planned = kind in PLANS_TOPIC_TYPES
    topic = topics.clicks if kind == "click" else topics.plans if planned else topics.sales
    sku, store = doc.get("sku"), doc.get("store")
    if planned and sku is None:
        return topic, (store if isinstance(store, str) else DEFAULT_STORE).encode()
    if not isinstance(sku, str) or (store is not None and not isinstance(store, str)):
        return topic, None
    return topic, series_id(store, sku).encode()


class EventSender:
    """A thin KafkaProducer wrapper for event objects (or raw bytes, for tests of bad input)."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.topics = settings.topics
        self.producer = KafkaProducer(**producer_config(settings, bootstrap, "tidecast-producer"))
        self.sent = 0

    def send(self, doc: dict) -> FutureRecordMetadata:
        """Queue one event; the returned future resolves to its partition and offset."""
        topic, key = route(doc, self.topics)
        self.sent += 1
        return self.producer.send(topic, key=key, value=orjson.dumps(doc))

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> FutureRecordMetadata:
        self.sent += 1
        return self.producer.send(topic, key=key, value=value)

    def send_all(self, docs: Iterable[dict]) -> int:
        for doc in docs:
            self.send(doc)
        return self.sent

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()

    def __enter__(self) -> EventSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
