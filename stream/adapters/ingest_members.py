"""The live ingest workers of a topic prefix, kept in Redis: the membership that splits the partitions.

One sorted set, ``<prefix>ingest:members``, maps each worker's id to the Redis time (ms) its membership lapses.
:meth:`RedisMembership.beat` renews the caller's entry, drops the lapsed ones and returns the live members, in
one Lua call timed by the Redis clock (so the workers' clocks never matter); :meth:`~RedisMembership.leave`
removes the caller at once. The set itself expires twice the longest time to live after the last beat (a
short-lived caller never shortens it), so a prefix nobody ingests leaves nothing behind.
:class:`~tidecast.stream.ownership.Ownership` turns the views into partitions.

Why not Kafka's consumer-group protocol: the embedded broker's group coordinator (Tansu 0.6.0) wedges a group for
good when a member stops during a rebalance (docs/benchmarks.md, Chaos), and the ingest workers need nothing
from it: their offsets and the fence on them live in Redis, as Flink's and Spark's Kafka sources keep theirs in
their own checkpoints and assign the partitions themselves. Kafka still gets the offsets, for lag tools.

>>> RedisMembership.key_for("tidecast.")
'tidecast.ingest:members'
"""

from __future__ import annotations

from typing import Any

from tidecast.stream.adapters.redis_clients import RedisClient

_BEAT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < 2 * tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2])) end
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class RedisMembership:
    """The ingest workers' membership set of one topic prefix (see the module docstring)."""

    def __init__(self, client: RedisClient, prefix: str) -> None:
        self.client: Any = client
        self.key = self.key_for(prefix)
        self._beat = client.register_script(_BEAT_LUA)

    @staticmethod
    def key_for(prefix: str) -> str:
        return f"{prefix}ingest:members"

    def beat(self, member: str, ttl_ms: int) -> list[str]:
        """Keep ``member`` alive for ``ttl_ms`` more; the live members (``member`` among them), sorted."""
        return sorted(m.decode() if isinstance(m, bytes) else m for m in self._beat(keys=[self.key],
                                                                                     args=[member, ttl_ms]))

    def leave(self, member: str) -> None:
        """Remove ``member`` now (a clean stop): the others take its partitions at their next beats."""
        self.client.zrem(self.key, member)
