"""Where the servers are: configured ones (``TIDECAST_KAFKA_BOOTSTRAP``/``TIDECAST_REDIS_URL``) or the embedded ones.

>>> from tidecast.config import Settings
>>> resolve(Settings(kafka_bootstrap="127.0.0.1:9092", redis_url="redis://127.0.0.1:6379/0"))
Endpoints(kafka='127.0.0.1:9092', redis='redis://127.0.0.1:6379/0')
"""

from __future__ import annotations

from tidecast.config import Endpoints, Settings
from tidecast.infra.embedded import find


class NoServers(RuntimeError):
    """Neither configured servers nor running embedded ones."""


def resolve(settings: Settings) -> Endpoints:
    """Configured servers win; otherwise the embedded ones recorded under ``TIDECAST_HOME``."""
    found = find(settings) if settings.embedded else None
    kafka = settings.kafka_bootstrap or (found.kafka if found else None)
    redis = settings.redis_url or (found.redis if found else None)
    if kafka is None or redis is None:
        raise NoServers(
            f"no Kafka/Redis: set TIDECAST_KAFKA_BOOTSTRAP and TIDECAST_REDIS_URL, "
            f"or start the embedded ones with `tidecast infra up` (TIDECAST_HOME={settings.home})"
        )
    return Endpoints(kafka, redis)
