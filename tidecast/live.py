"""Wiring for the forecaster: the learner from settings, Redis windows and checkpoints, the Kafka sink."""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
import torch

from tidecast.config import Endpoints, Settings
from tidecast.models import checkpoint
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.producers.forecast_publisher import KafkaForecastSink
from tidecast.stream.adapters.redis_store import RedisCheckpoints, RedisWindowStore
from tidecast.stream.forecaster import Forecaster, ForecasterConfig


def learner_config(settings: Settings) -> LearnerConfig:
    return LearnerConfig(horizon=settings.horizon, quantiles=settings.quantiles)


def forecaster_config(settings: Settings, inputs: tuple[str, ...]) -> ForecasterConfig:
    return ForecasterConfig(
        bucket_seconds=settings.bucket_seconds,
        lateness_seconds=settings.lateness_seconds,
        retention=settings.retention,
        quantiles=settings.quantiles,
        inputs=inputs,
    )


@dataclass
class LiveForecaster:
    forecaster: Forecaster
    sink: KafkaForecastSink

    def close(self) -> None:
        self.sink.close()


def build(settings: Settings, endpoints: Endpoints) -> LiveForecaster:
    """A forecaster on Redis and Kafka, resumed from its checkpoint when there is one.

    torch gets ``TIDECAST_TORCH_THREADS`` threads (default 1): on a small machine the ingest worker, the
    committer and the broker need the other cores, and the model is small.
    """
    torch.set_num_threads(int(os.environ.get("TIDECAST_TORCH_THREADS", "1")))
    client = redis.Redis.from_url(endpoints.redis)
    store = RedisWindowStore(client, settings.topic_prefix)
    learner = OnlineLearner(learner_config(settings))
    if learner.min_history > settings.retention:
        raise ValueError(
            f"TIDECAST_RETENTION ({settings.retention}) must cover the model's history "
            f"({learner.min_history} buckets: lags + horizon)"
        )
    sink = KafkaForecastSink(settings, endpoints.kafka)
    inputs = tuple(
        f"{topic}:{partition}"
        for topic in settings.topics.inputs
        for partition in sorted(sink.producer.partitions_for(topic))
    )
    forecaster = Forecaster(
        forecaster_config(settings, inputs), store, learner, sink, RedisCheckpoints(client, settings.topic_prefix),
        checkpoint.dumps, checkpoint.loads,
    )
    return LiveForecaster(forecaster, sink)
