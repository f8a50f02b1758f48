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

A lease that lapsed under a live forecaster (a pause longer than the time to live: Redis or the forecaster
stopped for 30 s) or that Redis lost (``FLUSHALL``, a restart without persistence) is taken again by the next
renew or save, in the same Lua call, if and only if the lease key is absent and the checkpoint key still holds
what this forecaster last read or wrote (then nobody else wrote since and its memory is the truth), or what
this save is writing (its own earlier attempt landed, and Redis paused before its reply came back), or does
not exist at all (Redis lost it: the forecaster carries on from memory and writes it at its next close). The
comparison is by digest: the forecaster keeps the SHA-1 of the last blob it loaded or saved (hashed in
Python, once per save, a few ms for a checkpoint of megabytes; no digest is stored in Redis), and the script
hashes the stored blob with ``redis.sha1hex`` only in the rare lapsed case. A held lease of another owner, or
a checkpoint that changed, is :class:`LeaseLost` as before. One warning is logged per re-take: the script
leaves a notice under ``{<checkpoint key>}:lease-retaken:<owner>`` that the owner's next calls return until
it has reported it (the reply of the call that took the lease again may be lost with its connection: a call
sent to a paused server runs when it resumes, while the client has given up on it and retries).

A close can outlast the time to live (a million series take over a minute here, most of it publishing):
around each step the loop renews the lease from a background thread every third of the time to live
(:meth:`LeasedCheckpoints.kept`), as Kafka's consumers send heartbeats from a thread of their own. Like
Kafka's ``max.poll.interval.ms``, progress is bounded too: the thread renews only while the last checkpoint
write (or the start of the block) is less than ``limit`` seconds old (:data:`KEEP_LIMIT_S`), so a close that
hangs lets the lease lapse and a standby take over.

With an :class:`~tidecast.stream.adapters.retry.Outage` every call rides out a Redis outage. A retry after a
lost connection is safe: save and renew are idempotent for the owner (the same blob, the same time to live;
a first attempt that re-took the lease leaves it this owner's), release deletes only this owner's lease, and
an acquire whose ``SET NX`` landed unseen finds its own id on the lease.

>>> LeasedCheckpoints.lease_key("tidecast.", "all")
'{tidecast.checkpoint:forecaster:all}:lease'
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tidecast.config import ServiceError
from tidecast.stream.adapters.redis_clients import RedisClient
from tidecast.stream.adapters.redis_store import RedisCheckpoints, glob_escape
from tidecast.stream.adapters.retry import Outage
from tidecast.stream.ownership import owner_id

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TTL_MS = 30_000
"""How long a lease outlives its last renewal: a forecaster renews it between closes, at every close, and from
a background thread while a close runs (:meth:`LeasedCheckpoints.kept`)."""
KEEP_LIMIT_S = 600.0
"""The longest a close may go without writing the checkpoint before the background renewals stop (10 minutes:
several times the close of a million series measured here, 82 s)."""

RETAKEN, RETAKEN_CHECKPOINT_GONE = "2", "3"
"""The codes of a re-take notice: the lease had lapsed; it had, and the checkpoint was gone (data lost)."""

# KEYS[1] lease, KEYS[2] checkpoint, KEYS[3] this owner's re-take notice; ARGV[1] owner, ARGV[2] ttl ms,
# ARGV[3] SHA-1 (hex) of the checkpoint this owner last loaded or saved ('' for none), ARGV[4] this call's id
# (the same for its retries), ARGV[5] the notice last reported to the owner ('' for none), ARGV[6] the blob
# to write and ARGV[7] its SHA-1 (save only: a stored blob equal to it is this save's own earlier attempt,
# which landed while its reply was lost, as when Redis is paused right after running it). Replies {0, ''}
# (lost) or {1, notice}: the notice ('<code>:<call id>') stays until the owner has reported it, since the reply
# of the call that re-took the lease may be lost with its connection.
_KEEP = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  if holder then return {0, ''} end
  local stored = redis.call('GET', KEYS[2])
  local code = '2'
  if stored then
    local sha = redis.sha1hex(stored)
    if not ((ARGV[3] ~= '' and sha == ARGV[3]) or sha == ARGV[7]) then return {0, ''} end
  elseif ARGV[3] ~= '' then
    code = '3'
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[3], code .. ':' .. ARGV[4], 'PX', 10 * tonumber(ARGV[2]))
end
if ARGV[6] then redis.call('SET', KEYS[2], ARGV[6]) end
local notice = redis.call('GET', KEYS[3])
if notice and notice == ARGV[5] then
  redis.call('DEL', KEYS[3])
  notice = false
end
return {1, notice or ''}
"""
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
_RELEASE = """
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseHeld(ServiceError):
    """Another forecaster holds the lease of this checkpoint."""


class LeaseLost(ServiceError):
    """This forecaster's lease expired and another one took it: it must stop without writing."""


class LeasedCheckpoints:
    """A :class:`~tidecast.stream.ports.CheckpointStore` whose writes need the lease (see the module docstring).

    The checkpoint key is :class:`RedisCheckpoints`' (``<prefix>checkpoint:forecaster:<name>``). ``outage``:
    every Redis call rides out outages of up to its timeout (then
    :class:`~tidecast.stream.adapters.retry.OutageError`); without it a failed call raises at once.
    """

    def __init__(
        self,
        client: RedisClient,
        prefix: str,
        name: str = "all",
        ttl_ms: int = DEFAULT_TTL_MS,
        outage: Outage | None = None,
    ) -> None:
        if ttl_ms < 1000:
            raise ValueError(f"a lease must live at least 1000 ms, got {ttl_ms}")
        self.client: Any = client  # raw bytes replies (see RedisWindowStore)
        self.key = RedisCheckpoints.key_for(prefix, name)
        self.lease = self.lease_key(prefix, name)
        self.ttl_ms = int(ttl_ms)
        self.owner = owner_id()
        self.outage = outage
        self.notice_key = f"{self.lease}-retaken:{self.owner}"
        self.digest = ""
        """SHA-1 (hex) of the checkpoint this forecaster last loaded or saved; '' while it knows none."""
        self._notice = ""  # the last re-take notice reported (see _KEEP)
        self._lock = threading.Lock()  # the keep script's state, shared with the renewing thread (see kept)
        self._progress = time.monotonic()  # the last checkpoint write, or the start of a kept block
        self._keep = client.register_script(_KEEP)
        self._release = client.register_script(_RELEASE)
        self._take_over = client.register_script(_TAKE_OVER)

    @staticmethod
    def lease_key(prefix: str, name: str) -> str:
        return "{" + RedisCheckpoints.key_for(prefix, name) + "}:lease"

    def _call(self, fn: Callable[[], T]) -> T:
        return fn() if self.outage is None else self.outage.call(fn)

    def acquire(self, holder_is_dead: Callable[[str], bool] = lambda holder: False) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming the holder. A holder for which ``holder_is_dead``
        (its owner id ``host:pid:tag``) is true is replaced at once, atomically (only if it still holds it)."""
        for _ in range(2):  # twice: the lease may expire between the SET and the GET
            if self._call(lambda: self.client.set(self.lease, self.owner, nx=True, px=self.ttl_ms)):
                return
            raw = self._call(lambda: self.client.get(self.lease))
            if raw is not None:
                break
        if raw == self.owner.encode():  # an earlier attempt landed, its reply was lost with the connection
            return
        holder = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        dead = raw is not None and holder_is_dead(holder)
        if dead and (self._call(lambda: self._take_over(keys=[self.lease, self.key],
                                                        args=[raw, self.owner, self.ttl_ms]))
                     or self._call(lambda: self.client.get(self.lease)) == self.owner.encode()):
            return
        raise LeaseHeld(
            f"another forecaster ({holder}) holds the lease {self.lease} of checkpoint {self.key}: stop it first, "
            f"or, if it died, wait up to {self.ttl_ms / 1000:.0f} s for the lease to expire"
        )

    def renew(self) -> None:
        """Extend the lease, taking it again if it lapsed (see the module docstring); :class:`LeaseLost` if
        another forecaster holds it, or wrote the checkpoint since this one last did."""
        self._keep_call()

    def release(self) -> None:
        """Give the lease up (only if this forecaster still holds it)."""
        self._call(lambda: self._release(keys=[self.lease, self.key, self.notice_key], args=[self.owner]))

    def load(self) -> bytes | None:
        blob = self._call(lambda: self.client.get(self.key))
        self.digest = "" if blob is None else _digest(blob)
        return blob

    def save(self, blob: bytes) -> None:
        """Write the checkpoint and extend the lease, in one step, only while this forecaster holds it (or may
        take it again, as :meth:`renew`)."""
        self._keep_call(blob, _digest(blob))
        self._progress = time.monotonic()

    @contextlib.contextmanager
    def kept(self, limit: float = KEEP_LIMIT_S, every: float | None = None) -> Iterator[None]:
        """Renew the lease from a background thread every ``every`` seconds (a third of the time to live) while
        the block runs, as long as the last checkpoint write is under ``limit`` seconds old (see the module
        docstring). A renewal's :class:`LeaseLost` is raised when the block ends (unless it raised itself)."""
        stop, failed = threading.Event(), []
        interval = self.ttl_ms / 3000 if every is None else every
        self._progress = time.monotonic()

        def keep() -> None:
            while not stop.wait(interval):
                if time.monotonic() - self._progress > limit:
                    log.warning("no checkpoint written for %.0f s: the lease %s is left to lapse, so that another "
                                "forecaster can take over if this one hangs", limit, self.lease)
                    return
                try:
                    self.renew()
                except Exception as exc:  # LeaseLost, an OutageError: the loop raises it
                    failed.append(exc)
                    return

        thread = threading.Thread(target=keep, name="tidecast-lease", daemon=True)
        thread.start()
        try:
            yield
        except BaseException:
            if failed:
                log.error("the lease %s could not be renewed during the close: %s", self.lease, failed[0])
            raise
        finally:
            stop.set()
            thread.join()
        if failed:
            raise failed[0]

    def _keep_call(self, blob: bytes | None = None, digest: str = "") -> None:
        """Run the keep script (renew, or save ``blob`` whose SHA-1 is ``digest``); retries send the same call.
        One at a time: the renewing thread of :meth:`kept` shares the digest and the notice with the loop."""
        with self._lock:
            args: list[str | int | bytes] = [self.owner, self.ttl_ms, self.digest, uuid.uuid4().hex[:12],
                                             self._notice]
            if blob is not None:
                args += [blob, digest]
            kept, notice = self._call(lambda: self._keep(keys=[self.lease, self.key, self.notice_key], args=args))
            if not kept:
                raise LeaseLost(f"the lease {self.lease} of checkpoint {self.key} expired and another forecaster "
                                "may hold it or wrote the checkpoint: this one stops without writing")
            if blob is not None:
                self.digest = digest
            notice = notice.decode() if isinstance(notice, bytes) else str(notice)
            if notice and notice != self._notice:
                self._notice = notice
                self._warn(notice.partition(":")[0], saved=blob is not None)

    def _warn(self, code: str, saved: bool) -> None:
        if code == RETAKEN_CHECKPOINT_GONE:
            log.warning("the checkpoint is gone from Redis (data lost?): the forecaster carries on from memory and "
                        "%s (%s)", "wrote it again" if saved else "writes it again at the next close", self.key)
        else:
            log.warning("the lease %s of checkpoint %s had lapsed (a pause longer than its %g s?); nobody wrote "
                        "the checkpoint since: this forecaster took it again and carries on", self.lease, self.key,
                        self.ttl_ms / 1000)

def lease_pattern(prefix: str) -> str:
    """The ``SCAN MATCH`` pattern of every forecaster lease under ``prefix``.

    >>> print(lease_pattern("t."))
    \\{t.checkpoint:forecaster:*}:lease
    """
    return glob_escape("{" + RedisCheckpoints.key_for(prefix, "")) + "*}:lease"


def held_leases(client: RedisClient, prefix: str) -> list[str]:
    """The forecaster leases held now under ``prefix`` (their keys), on every node of a cluster."""
    redis_client: Any = client
    return sorted(key.decode() if isinstance(key, bytes) else key
                  for key in redis_client.scan_iter(match=lease_pattern(prefix), count=1000))


def _digest(blob: bytes) -> str:
    """The SHA-1 (hex) the keep script compares with ``redis.sha1hex`` of the stored checkpoint (a change
    detector between forecasters that share the lease's rules, not a defence against forgery).

    >>> _digest(b"abc")
    'a9993e364706816aba3e25717850c26c9cd0d89d'
    """
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()
