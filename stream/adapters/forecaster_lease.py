"""One forecaster per checkpoint: a lease in Redis, and checkpoint writes fenced by it.

Two forecasters on one checkpoint would both learn every bucket and overwrite each other's state. The
lease is one key, ``{<checkpoint key>}:lease`` (the hash tag puts it in the checkpoint's Redis Cluster slot, so
one script can touch both), holding its owner's id (host, PID and a random tag)
with a time to live: :meth:`LeasedCheckpoints.acquire` takes it only when it is free (``SET NX PX``), every
:meth:`~LeasedCheckpoints.save` of the checkpoint and every :meth:`~LeasedCheckpoints.renew` extends it, and
both check the owner first, in one Lua call, so a forecaster that lost its lease (it stalled past the time to
live and another one took over) can never write the checkpoint again: it gets :class:`LeaseLost` and stops.
A forecaster that dies leaves the lease to expire; one that stops cleanly releases it at once. A restart
need not wait for the expiry when the caller can tell the holder is dead (``holder_is_dead``: the live
wiring checks a holder on this host by PID).

>>> LeasedCheckpoints.lease_key("tidecast.", "all")
'{tidecast.checkpoint:forecaster:all}:lease'
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

import redis

from tidecast.config import ServiceError
from tidecast.stream.adapters.redis_store import RedisCheckpoints

DEFAULT_TTL_MS = 30_000
"""How long a lease outlives its last renewal: a forecaster renews it between closes and at every close."""

# KEYS[1] lease, KEYS[2] checkpoint; ARGV[1] owner, ARGV[2] ttl ms, ARGV[3] the checkpoint blob (save only)
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseHeld(ServiceError):
    """Another forecaster holds the lease of this checkpoint."""


class LeaseLost(ServiceError):
    """This forecaster's lease expired and another one took it: it must stop without writing."""


class LeasedCheckpoints:
    """A :class:`~tidecast.stream.ports.CheckpointStore` whose writes need the lease (see the module docstring).

    The checkpoint key is :class:`RedisCheckpoints`' (``<prefix>checkpoint:forecaster:<name>``).
    """

    def __init__(self, client: redis.Redis, prefix: str, name: str = "all", ttl_ms: int = DEFAULT_TTL_MS) -> None:
        if ttl_ms < 1000:
            raise ValueError(f"a lease must live at least 1000 ms, got {ttl_ms}")
        self.client: Any = client  # raw bytes replies (see RedisWindowStore)
        self.key = RedisCheckpoints.key_for(prefix, name)
        self.lease = self.lease_key(prefix, name)
        self.ttl_ms = int(ttl_ms)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew = client.register_script(_RENEW)
        self._save = client.register_script(_SAVE)
        self._release = client.register_script(_RELEASE)
        self._take_over = client.register_script(_TAKE_OVER)

    @staticmethod
    def lease_key(prefix: str, name: str) -> str:
        return "{" + RedisCheckpoints.key_for(prefix, name) + "}:lease"

    def acquire(self, holder_is_dead: Callable[[str], bool] = lambda holder: False) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming the holder. A holder for which ``holder_is_dead``
        (its owner id ``host:pid:tag``) is true is replaced at once, atomically (only if it still holds it)."""
        if self.client.set(self.lease, self.owner, nx=True, px=self.ttl_ms):
            return
        raw = self.client.get(self.lease)
        holder = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        dead = raw is not None and holder_is_dead(holder)
        if dead and self._take_over(keys=[self.lease, self.key], args=[raw, self.owner, self.ttl_ms]):
            return
        raise LeaseHeld(
            f"another forecaster ({holder}) holds the lease {self.lease} of checkpoint {self.key}: stop it first, "
            f"or, if it died, wait up to {self.ttl_ms / 1000:.0f} s for the lease to expire"
        )

    def renew(self) -> None:
        """Extend the lease; :class:`LeaseLost` if another forecaster holds it now."""
        if not self._renew(keys=[self.lease, self.key], args=[self.owner, self.ttl_ms]):
            raise self._lost()

    def release(self) -> None:
        """Give the lease up (only if this forecaster still holds it)."""
        self._release(keys=[self.lease, self.key], args=[self.owner])

    def load(self) -> bytes | None:
        return self.client.get(self.key)

    def save(self, blob: bytes) -> None:
        """Write the checkpoint and extend the lease, in one step, only while this forecaster holds it."""
        if not self._save(keys=[self.lease, self.key], args=[self.owner, self.ttl_ms, blob]):
            raise self._lost()

    def _lost(self) -> LeaseLost:
        return LeaseLost(f"the lease {self.lease} of checkpoint {self.key} expired and another forecaster may "
                         "hold it: this one stops without writing")
