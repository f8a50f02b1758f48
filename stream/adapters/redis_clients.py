"""The one place tidecast builds a Redis client: from a URL, with the settings' TLS options.

The URL carries the ACL user and password (``redis://USER:PASSWORD@HOST:PORT/DB``, or ``redis://:PASSWORD@...``
for the default user) and TLS (``rediss://``); ``TIDECAST_REDIS_CA_FILE`` names the CA that signed a
``rediss://`` server's certificate (the system's CAs otherwise). See docs/operations.md. Print URLs through
:func:`tidecast.config.redact`.

>>> client = redis_client(Settings(), "redis://tidecast:s3cret@127.0.0.1:6379/2")  # connects on first use
>>> kwargs = client.connection_pool.connection_kwargs
>>> kwargs["username"], kwargs["db"], client.connection_pool.connection_class.__name__
('tidecast', 2, 'Connection')
>>> redis_client(Settings(), "rediss://127.0.0.1:6380/0").connection_pool.connection_class.__name__
'SSLConnection'
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tidecast.config import Settings


def redis_client_kwargs(settings: Settings, url: str) -> dict[str, object]:
    """Keyword arguments for ``redis.Redis.from_url(url, ...)`` beyond the URL: the CA file for ``rediss://``."""
    kwargs: dict[str, object] = {}
    if settings.redis_ca_file is not None and url.startswith("rediss://"):
        kwargs["ssl_ca_certs"] = str(settings.redis_ca_file)
    return kwargs


SOCKET_TIMEOUT = 10.0
"""Seconds a reply may take on a client built with ``caller_retries=True`` (the ingest worker's) before the call
fails and the caller retries it (:mod:`tidecast.stream.adapters.retry`): far above any one command's time on a
healthy server, short next to ``TIDECAST_OUTAGE_TIMEOUT``, so a paused server is noticed and retried."""


def redis_client(settings: Settings, url: str, caller_retries: bool = False) -> redis.Redis:
    """A client for ``url`` (user, password, database and TLS from the URL; the CA file from ``settings``).

    ``caller_retries``: the caller retries failed calls itself (the ingest's window store, through
    :class:`~tidecast.stream.adapters.retry.RetryingStore`): redis-py's own silent retries are off, so a retried
    commit is always seen as one (its fence must be read, see the retry module), and a reply that takes over
    :data:`SOCKET_TIMEOUT` seconds fails. Otherwise redis-py's defaults (a few quick retries of its own).

    >>> redis_client(Settings(), "redis://127.0.0.1:6379/0", caller_retries=True).get_retry().get_retries()
    0
    """
    kwargs = redis_client_kwargs(settings, url)
    if caller_retries:
        kwargs.update(socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                      retry=Retry(NoBackoff(), 0))
    return redis.Redis.from_url(url, **kwargs)
