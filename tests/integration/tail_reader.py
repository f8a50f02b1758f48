"""Read every forecast on the topic (from the beginning, until idle)."""

from __future__ import annotations

from tidecast.commands.tail_cmd import follow
from tidecast.config import Settings


def read_forecasts(settings: Settings, idle: float = 3.0) -> list[dict]:
    return list(follow(settings, settings.kafka_bootstrap, from_beginning=True, until_idle=idle))
