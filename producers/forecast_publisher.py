"""Publish forecasts to ``<prefix>forecasts``, one message per series, key = series id.

Delivery is at-least-once: :meth:`KafkaForecastSink.publish` returns only when Kafka has acknowledged
every message of the bucket close, and only then does the forecaster checkpoint. It keeps every send's
future, flushes with a deadline (``publish_timeout``, 60 s by default; ``TIDECAST_PUBLISH_TIMEOUT``) and
raises :class:`PublishError` if any message failed or was not acknowledged in time (kafka-python's
``flush()`` does not raise on a failed send), so the close is not checkpointed and a restart re-publishes
it. Duplicates after a crash-restart carry the same ``forecast_id``. Kafka transactions are optional
(``transactional_id``) for real Kafka; the embedded broker does not honour ``read_committed``, so
correctness never rests on them.

Broker outages: a publish that failed only for reasons an outage explains (the flush timed out, or every
failed send failed with a retriable error such as a lost connection or a delivery time-out) raises
:class:`PublishUnreachable`. With an ``outage`` (the live forecaster's:
``Outage("Kafka (forecasts)", TIDECAST_OUTAGE_TIMEOUT, (PublishUnreachable,))``) the sink publishes the same
close again, the same messages with the same ids, until the broker acknowledges all of them or the outage
timeout passes (then :class:`~tidecast.stream.adapters.retry.OutageError`); one log line when the outage
starts, one when it ends. A record error (``MessageSizeTooLargeError``, an authorization error) fails at once.
The producer is not wedged by a flush that timed out: kafka-python's ``flush`` only counts a flush in
progress, which it undoes on the way out, and this version has no bounded buffer to fill; the earlier sends
stay in the accumulator and are delivered (or expire after ``delivery_timeout_ms``) on their own, so a
retry may publish a message twice, with one ``forecast_id``. A transactional sink does not retry: its abort
needs the broker, so the next ``begin_transaction`` would fail.

>>> partition_for(b"all:85123A", 12) == partition_for(b"all:85123A", 12) < 12  # one series, one partition
True
>>> print(PublishError("tidecast.forecasts", 3, 100_000, ValueError("too large")))
3 of 100,000 forecast messages to tidecast.forecasts failed: ValueError: too large; the close is not checkpointed
>>> from kafka.errors import MessageSizeTooLargeError
>>> transient(KafkaTimeoutError("Expiring 3 record(s)")), transient(MessageSizeTooLargeError("9 MB"))
(True, False)
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from tidecast.config import ServiceError, Settings
from tidecast.stream.adapters.kafka_clients import producer_config
from tidecast.stream.adapters.retry import Outage
from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.stock_targets import StockTargets
from tidecast.stream.target_message import target_messages


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a series: a C crc32 of its key (kafka-python's pure-Python murmur2 costs more than
    the rest of a send)."""
    return zlib.crc32(key) % partitions


class PublishError(ServiceError):
    """Some forecast messages of a close were not acknowledged: the close must not be checkpointed.

    ``failed`` of ``total`` messages failed (or were not acknowledged before the deadline; then ``cause`` is
    the timeout); ``cause`` is the first failure.
    """

    def __init__(
        self, topic: str, failed: int, total: int, cause: BaseException | None, timeout: float | None = None
    ) -> None:
        self.topic, self.failed, self.total, self.cause = topic, failed, total, cause
        if timeout is not None:
            text = (f"{failed:,} of {total:,} forecast messages to {topic} not acknowledged within {timeout:g} s "
                    "(is Kafka reachable?)")
        else:
            why = f": {type(cause).__name__}: {cause}" if cause is not None else ""
            text = f"{failed:,} of {total:,} forecast messages to {topic} failed{why}"
        super().__init__(text + "; the close is not checkpointed")


class PublishUnreachable(PublishError):
    """A :class:`PublishError` that a broker outage explains (a time-out, retriable failures only): the same
    close may be published again."""


def transient(cause: BaseException | None) -> bool:
    """Whether a send's failure says the broker is away or busy (kafka-python's retriable errors: time-outs,
    lost connections, a leader moving), not that the record is wrong."""
    return cause is None or bool(getattr(cause, "retriable", False))


class KafkaForecastSink:
    """A :class:`~tidecast.stream.ports.ForecastSink` on Kafka; :meth:`publish` raises :class:`PublishError`
    unless every message was acknowledged within ``publish_timeout`` seconds; with an ``outage``, a publish
    the broker's absence failed is tried again (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        transactional_id: str | None = None,
        publish_timeout: float | None = None,
        outage: Outage | None = None,
        targets: bool = False,
    ) -> None:
        """``publish_timeout`` (seconds): ``TIDECAST_PUBLISH_TIMEOUT`` of ``settings`` unless given; ``outage``:
        retry publishes that fail with :class:`PublishUnreachable` through it (not with ``transactional_id``);
        ``targets``: also send the stock targets the forecaster hands over, one per series to
        ``<prefix>targets`` (:mod:`tidecast.stream.target_message`), acknowledged with the forecasts."""
        if publish_timeout is None:
            publish_timeout = float(settings.publish_timeout_seconds)
        if not publish_timeout > 0:
            raise ValueError(f"the publish timeout must be a positive number of seconds, got {publish_timeout!r}")
        self.publish_timeout = publish_timeout
        self.topic = settings.topics.forecasts
        self.targets_topic, self.with_targets = settings.topics.targets, targets
        config = producer_config(settings, bootstrap, "tidecast-forecasts")
        if transactional_id:
            config["transactional_id"] = transactional_id
        self.producer = KafkaProducer(**config)
        self.transactional = bool(transactional_id)
        self.outage = None if self.transactional else outage
        self.partitions = len(self.producer.partitions_for(self.topic))
        self.target_partitions = len(self.producer.partitions_for(self.targets_topic)) if targets else 0
        if self.transactional:
            self.producer.init_transactions()

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                plans: Sequence[str | None] | None = None, lead: np.ndarray | None = None,
                targets: StockTargets | None = None, explanations: Sequence[dict] | None = None) -> int:
        """Send one close and wait for every acknowledgement, through outages when the sink has an ``outage``;
        raises :class:`PublishError` otherwise. ``plans``: each series' plan hash (the forecast's ``plan``);
        ``lead``: the lead-time quantiles (not sent); ``targets``: the stock targets, sent to
        ``<prefix>targets`` when the sink was made with ``targets=True``; ``explanations``: each forecast's
        ``explain`` field. Returns the forecasts sent."""
        if self.outage is None:
            return self._publish_once(batch, series, values, mean, plans, targets, explanations)
        return self.outage.call(lambda: self._publish_once(batch, series, values, mean, plans, targets, explanations))

    def _messages(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                  plans: Sequence[str | None] | None,
                  targets: StockTargets | None,
                  explanations: Sequence[dict] | None) -> Iterator[tuple[str, int, bytes, bytes]]:
        """``(topic, partition, key, value)``: every forecast, then every stock target."""
        for key, value in batch.messages(series, values, mean, plans, explanations):
            yield self.topic, partition_for(key, self.partitions), key, value
        if targets is not None and self.with_targets:
            for key, value in target_messages(batch, series, targets):
                yield self.targets_topic, partition_for(key, self.target_partitions), key, value

    def _publish_once(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                      plans: Sequence[str | None] | None = None, targets: StockTargets | None = None,
                      explanations: Sequence[dict] | None = None) -> int:
        deadline = time.monotonic() + self.publish_timeout
        futures: list = []
        keep = futures.append
        send, topic = self.producer.send, self.topic
        try:
            if self.transactional:
                self.producer.begin_transaction()
            for to, partition, key, value in self._messages(batch, series, values, mean, plans, targets,
                                                                 explanations):
                keep(send(to, key=key, value=value, partition=partition))
            self.producer.flush(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaError as exc:  # a send refused (too large, no metadata, buffer full) or the flush timed out
            self._abort()
            total = max(len(futures), len(series))
            done = sum(1 for future in futures if future.is_done and future.exception is None)
            timeout = self.publish_timeout if isinstance(exc, KafkaTimeoutError) else None
            raise self._error(transient(exc))(topic, total - done, total, exc, timeout) from exc
        # after a flush every future is done (no blocking call here); a failed send shows only in its future
        failed = [future for future in futures if not future.is_done or future.exception is not None]
        if failed:
            self._abort()
            cause = failed[0].exception
            unreachable = all(transient(future.exception) for future in failed)
            raise self._error(unreachable)(topic, len(failed), len(futures), cause) from cause
        if self.transactional:
            self.producer.commit_transaction()
        return len(series)

    def _error(self, unreachable: bool) -> type[PublishError]:
        return PublishUnreachable if unreachable and not self.transactional else PublishError

    def _abort(self) -> None:
        """Abort the open transaction, if any, so that the next close can begin one."""
        if self.transactional:
            with contextlib.suppress(KafkaError):
                self.producer.abort_transaction()

    def close(self) -> None:
        """Flush and close, waiting at most ``publish_timeout`` for what is unacknowledged (a close that was not
        checkpointed is re-published on restart)."""
        try:
            self.producer.close(timeout=self.publish_timeout)
        except KafkaError:  # still unacknowledged: drop them (kafka-python's close gives up only after its flush)
            sender = getattr(self.producer, "_sender", None)
            if sender is not None:
                sender.force_close()  # fails the pending sends, so that the close below returns
            with contextlib.suppress(KafkaError):
                self.producer.close(timeout=5)
