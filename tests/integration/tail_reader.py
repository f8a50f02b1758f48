"""Read every forecast on the topic (from the beginning, until idle)."""

from __future__ import annotations

from tidecast.config import Settings
from tidecast.consumers.forecast_reader import follow


def read_forecasts(settings: Settings, idle: float = 3.0, topic: str | None = None) -> list[dict]:
    return list(follow(settings, settings.kafka_bootstrap, from_beginning=True, until_idle=idle, topic=topic))
