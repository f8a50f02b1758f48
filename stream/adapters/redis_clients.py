"""The one place tidecast builds a Redis client: from a URL, with the settings' TLS options.

The URL carries the ACL user and password (``redis://USER:PASSWORD@HOST:PORT/DB``, or ``redis://:PASSWORD@...``
for the default user) and TLS (``rediss://``); ``TIDECAST_REDIS_CA_FILE`` names the CA that signed a
``rediss://`` server's certificate (the system's CAs otherwise). See docs/operations.md. Print URLs through
:func:`tidecast.config.redact`.

A Redis Cluster is ``redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]`` (``rediss+cluster://`` with
TLS): one or more of its nodes, from which the client learns the rest and the slot map. Every key tidecast
writes for one partition shares a hash tag, as do a forecaster's checkpoint and lease, so every script and
every commit touches one slot.

>>> client = redis_client(Settings(), "redis://tidecast:s3cret@127.0.0.1:6379/2")  # connects on first use
>>> kwargs = client.connection_pool.connection_kwargs
>>> kwargs["username"], kwargs["db"], client.connection_pool.connection_class.__name__
('tidecast', 2, 'Connection')
>>> redis_client(Settings(), "rediss://127.0.0.1:6380/0").connection_pool.connection_class.__name__
'SSLConnection'
>>> cluster_nodes("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001")
(['10.0.0.1:7000', '10.0.0.2:7001'], 'u', 'p@ss', False)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from tidecast.config import ConfigError, Settings

RedisClient = redis.Redis | RedisCluster
"""What :func:`redis_client` builds: a client of one server, or of a Redis Cluster."""

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def cluster_nodes(url: str) -> tuple[list[str], str | None, str | None, bool]:
    """(``host:port`` of each node, user, password, TLS) of a ``redis+cluster://`` URL; ValueError if it is not
    one (a cluster has one database, 0, so a path other than ``/`` or ``/0`` is refused)."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("redis+cluster", "rediss+cluster") or not rest:
        raise ValueError("expected redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]")
    rest, _, path = rest.partition("/")
    if path.partition("?")[0] not in ("", "0"):
        raise ValueError(f"a Redis Cluster has database 0 only, not {path!r}")
    credentials, _, hosts = rest.rpartition("@")
    user, _, password = credentials.partition(":")
    nodes = [node.strip() for node in hosts.split(",") if node.strip()]
    for node in nodes:
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster node {node!r} is not HOST:PORT")
    if not nodes:
        raise ValueError("the URL names no cluster node (HOST:PORT)")
    return nodes, unquote(user) or None, unquote(password) or None, scheme == "rediss+cluster"


def redis_client_kwargs(settings: Settings, url: str) -> dict[str, Any]:
    """Keyword arguments of the client beyond the URL: the CA file for ``rediss://`` (and ``rediss+cluster://``)."""
    kwargs: dict[str, Any] = {}
    if settings.redis_ca_file is not None and url.startswith(("rediss://", "rediss+cluster://")):
        kwargs["ssl_ca_certs"] = str(settings.redis_ca_file)
    return kwargs


SOCKET_TIMEOUT = 10.0
"""Seconds a reply may take on a client built with ``caller_retries=True`` (the ingest worker's) before the call
fails and the caller retries it (:mod:`tidecast.stream.adapters.retry`): far above any one command's time on a
healthy server, short next to ``TIDECAST_OUTAGE_TIMEOUT``, so a paused server is noticed and retried."""


def redis_client(settings: Settings, url: str, caller_retries: bool = False) -> RedisClient:
    """A client for ``url`` (user, password, database and TLS from the URL; the CA file from ``settings``).

    ``caller_retries``: the caller retries failed calls itself (the ingest's window store, through
    :class:`~tidecast.stream.adapters.retry.RetryingStore`): redis-py's own silent retries are off, so a retried
    commit is always seen as one (its fence must be read, see the retry module), and a reply that takes over
    :data:`SOCKET_TIMEOUT` seconds fails, and a cluster client that reaches no node when it is built (it learns
    the slot map then) is built again for up to ``TIDECAST_OUTAGE_TIMEOUT``, as a single server's first call
    would be retried. Otherwise redis-py's defaults (a few quick retries of its own).

    >>> redis_client(Settings(), "redis://127.0.0.1:6379/0", caller_retries=True).get_retry().get_retries()
    0
    """
    kwargs = redis_client_kwargs(settings, url)
    if caller_retries:
        kwargs.update(socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                      retry=Retry(NoBackoff(), 0))
    if not is_cluster(url):
        return redis.Redis.from_url(url, **kwargs)
    try:
        nodes, user, password, tls = cluster_nodes(url)
    except ValueError as exc:
        raise ConfigError(f"TIDECAST_REDIS_URL: {exc}") from None
    startup = [ClusterNode(host, int(port)) for host, _, port in (node.rpartition(":") for node in nodes)]

    def connect() -> RedisCluster:  # a cluster client learns the slot map when it is built
        return RedisCluster(startup_nodes=startup, username=user, password=password, ssl=tls, **kwargs)

    if not caller_retries:
        return connect()
    from tidecast.stream.adapters.retry import REDIS_ERRORS, Outage

    return Outage("Redis Cluster", settings.outage_timeout_seconds, REDIS_ERRORS).call(connect)
