"""The forecast publisher is at-least-once for real: a send that fails, or is not acknowledged in time, makes
``publish`` raise, and the forecaster then does not checkpoint that close (a restart re-publishes it)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import torch
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError
from kafka.future import Future

from tidecast.config import Settings
from tidecast.models import checkpoint
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.producers import forecast_publisher
from tidecast.producers.forecast_publisher import KafkaForecastSink, PublishError, PublishUnreachable
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.adapters.retry import Outage, OutageError
from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.ports import MemoryCheckpoints
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import MemoryWindowStore

torch.set_num_threads(1)

DAY = 86_400
SMALL = LearnerConfig(horizon=2, lags=7, aux_lags=3, scale_window=7, hidden=8, batch_size=32, replay_capacity=64,
                      sku_buckets=64, store_buckets=8)


class FakeProducer:
    """kafka-python's producer as the sink uses it. ``fail`` sends fail at flush (their futures get the error,
    flush returns as kafka-python's does); ``stuck`` leaves them unacknowledged (flush times out), and so do
    the next ``stuck_for`` flushes (a broker that comes back: a later flush acknowledges every pending send)."""

    def __init__(self, **config: object) -> None:
        self.config = config
        self.fail: set[int] = set()
        self.stuck = False
        self.stuck_for = 0
        self.too_large_at: int | None = None
        self.pending: list[Future] = []
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.flush_timeouts: list[float | None] = []

    def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def send(self, topic: str, key: bytes, value: bytes, partition: int) -> Future:
        if self.too_large_at is not None and len(self.sent) == self.too_large_at:
            raise MessageSizeTooLargeError("The message is 9000000 bytes when serialized")
        future = Future()
        self.pending.append(future)
        self.sent.append((topic, key, value, partition))
        return future

    def flush(self, timeout: float | None = None) -> None:
        self.flush_timeouts.append(timeout)
        if self.stuck or self.stuck_for:
            self.stuck_for = max(0, self.stuck_for - 1)
            raise KafkaTimeoutError("Timeout waiting for future")
        start = len(self.sent) - len(self.pending)
        for i, future in enumerate(self.pending, start=start):
            if i in self.fail:
                future.failure(NotLeaderForPartitionError(f"partition of message {i}"))
            else:
                future.success(i)
        self.pending = []

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    fake = FakeProducer()
    monkeypatch.setattr(forecast_publisher, "KafkaProducer", lambda **config: fake)
    return fake


def close_of(series: int = 6) -> tuple[ForecastBatch, list[str], np.ndarray, np.ndarray]:
    names = [f"s1:A{i}" for i in range(series)]
    values = np.tile(np.array([1.0, 2.0, 3.0], np.float32), (series, 2, 1))
    return ForecastBatch(DAY, 1_767_571_200_000, (0.1, 0.5, 0.9), 7, 0), names, values, values[:, :, 1]


def test_every_message_acknowledged_returns_the_count(producer: FakeProducer) -> None:
    sink = KafkaForecastSink(Settings(), "unused:9092")
    assert sink.publish(*close_of()) == 6
    assert len(producer.sent) == 6 and producer.pending == []


def test_failed_sends_raise_naming_the_topic_the_count_and_the_first_cause(producer: FakeProducer) -> None:
    sink = KafkaForecastSink(Settings(), "unused:9092")
    producer.fail = {2, 4}
    with pytest.raises(PublishError) as caught:
        sink.publish(*close_of())
    error = caught.value
    assert (error.topic, error.failed, error.total) == ("tidecast.forecasts", 2, 6)
    assert isinstance(error.cause, NotLeaderForPartitionError)
    assert str(error).startswith("2 of 6 forecast messages to tidecast.forecasts failed: NotLeaderForPartitionError")


def test_a_flush_past_the_timeout_raises(producer: FakeProducer) -> None:
    sink = KafkaForecastSink(Settings(), "unused:9092", publish_timeout=2.5)
    producer.stuck = True
    with pytest.raises(PublishError, match=r"6 of 6 forecast messages to tidecast.forecasts not acknowledged "
                                           r"within 2.5 s"):
        sink.publish(*close_of())
    assert 0 < producer.flush_timeouts[0] <= 2.5  # the flush is bounded by the deadline


def test_a_send_refused_at_once_raises(producer: FakeProducer) -> None:
    sink = KafkaForecastSink(Settings(), "unused:9092")
    producer.too_large_at = 3
    with pytest.raises(PublishError, match=r"6 of 6 forecast messages .* failed: MessageSizeTooLargeError"):
        sink.publish(*close_of())


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        KafkaForecastSink(Settings(), "unused:9092", publish_timeout=0)


def filled_store(days: int = 12) -> MemoryWindowStore:
    store = MemoryWindowStore()
    docs = generate(SyntheticConfig(series=4, days=days, seed=3, clicks=False))
    records = [Record(i, orjson.dumps(doc)) for i, doc in enumerate(docs)]
    ingestor = PartitionIngestor("sales", 0, Buckets(DAY), 0, 30, store.load_partition("sales", 0))
    assert store.commit(ingestor.apply(records))
    return store


def test_the_forecaster_does_not_checkpoint_a_close_whose_publish_failed(producer: FakeProducer) -> None:
    config = ForecasterConfig(bucket_seconds=DAY, lateness_seconds=0, retention=30, quantiles=SMALL.quantiles,
                              inputs=("sales:0",))
    store, checkpoints = filled_store(), MemoryCheckpoints()
    sink = KafkaForecastSink(Settings(), "unused:9092")

    def start() -> Forecaster:
        return Forecaster(config, store, OnlineLearner(SMALL), sink, checkpoints, checkpoint.dumps, checkpoint.loads,
                          clock=lambda: 0.0)

    first = start()
    [report] = first.step(limit=1)
    assert checkpoints.saves == 1
    saved, before = checkpoints.blob, len(producer.sent)
    producer.fail = {before + 1}  # one message of the next close fails
    with pytest.raises(PublishError, match=r"1 of \d+ forecast messages"):
        first.step(limit=1)
    assert checkpoints.saves == 1 and checkpoints.blob == saved  # the failed close is not checkpointed
    failed_close = [value for *_, value, _ in producer.sent[before:]]
    producer.fail = set()
    [again] = start().step(limit=1)  # a restart resumes after the last checkpointed close: the failed one again
    assert again.bucket == report.bucket + 1 and checkpoints.saves == 2
    ids = [orjson.loads(value)["forecast_id"] for *_, value, _ in producer.sent[-again.published:]]
    assert len(ids) > 1 and ids == [orjson.loads(value)["forecast_id"] for value in failed_close]


def kafka_outage(timeout: float = 60) -> tuple[Outage, list[float]]:
    """An outage watch on a fake clock: sleeping moves it on."""
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    return Outage("Kafka (forecasts)", timeout, (PublishUnreachable,), clock=lambda: now[0], sleep=sleep), sleeps


def test_a_timeout_or_retriable_failures_are_unreachable_a_record_error_is_not(producer: FakeProducer) -> None:
    sink = KafkaForecastSink(Settings(), "unused:9092", publish_timeout=1)
    producer.stuck = True
    with pytest.raises(PublishUnreachable):
        sink.publish(*close_of())
    producer.stuck, producer.fail = False, {len(producer.sent) + 1}
    with pytest.raises(PublishUnreachable, match="NotLeaderForPartitionError"):
        sink.publish(*close_of())
    producer.fail, producer.too_large_at = set(), len(producer.sent) + 2
    with pytest.raises(PublishError, match="MessageSizeTooLargeError") as caught:
        sink.publish(*close_of())
    assert not isinstance(caught.value, PublishUnreachable)


def test_a_close_is_published_again_through_a_broker_outage_with_the_same_ids(
    producer: FakeProducer, caplog: pytest.LogCaptureFixture
) -> None:
    outage, sleeps = kafka_outage()
    sink = KafkaForecastSink(Settings(), "unused:9092", publish_timeout=5, outage=outage)
    producer.stuck_for = 3  # three flushes time out, the fourth finds the broker back
    with caplog.at_level("WARNING"):
        assert sink.publish(*close_of()) == 6
    assert sleeps == [0.1, 0.2, 0.4] and len(producer.flush_timeouts) == 4
    ids = [orjson.loads(value)["forecast_id"] for *_, value, _ in producer.sent]
    assert len(ids) == 24 and len(set(ids)) == 6  # four sends of the same close: at-least-once, stable ids
    assert producer.pending == []  # the earlier attempts' sends were acknowledged too, none is left hanging
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("Kafka (forecasts) unreachable (6 of 6 forecast messages")
    assert lines[1].startswith("Kafka (forecasts) answers again after 0.7s")


def test_a_broker_outage_longer_than_the_timeout_fails_and_a_record_error_fails_at_once(
    producer: FakeProducer,
) -> None:
    outage, sleeps = kafka_outage(timeout=10)
    sink = KafkaForecastSink(Settings(), "unused:9092", publish_timeout=5, outage=outage)
    producer.stuck = True
    with pytest.raises(OutageError, match=r"Kafka \(forecasts\) unreachable for 10s \(TIDECAST_OUTAGE_TIMEOUT\)"):
        sink.publish(*close_of())
    assert sum(sleeps) == 10
    producer.stuck, producer.too_large_at, sleeps[:] = False, len(producer.sent) + 1, []
    with pytest.raises(PublishError, match="MessageSizeTooLargeError"):
        sink.publish(*close_of())
    assert sleeps == []


def test_a_transactional_sink_does_not_retry(producer: FakeProducer) -> None:
    producer.begin_transaction = producer.abort_transaction = producer.init_transactions = lambda: None
    outage, sleeps = kafka_outage()
    sink = KafkaForecastSink(Settings(), "unused:9092", transactional_id="t", publish_timeout=5, outage=outage)
    producer.stuck = True
    with pytest.raises(PublishError) as caught:
        sink.publish(*close_of())
    assert not isinstance(caught.value, PublishUnreachable) and sleeps == []
