"""Which input partitions an ingest worker holds, from successive views of the live workers.

The ingest workers split the partition numbers among themselves (a partition number covers that partition of
every input topic: its Redis keys share one hash tag). Every worker beats every ``heartbeat`` into a membership
set in the store (:mod:`tidecast.stream.adapters.ingest_members`) and gets back the live members; from that view
:class:`Ownership` says which partitions to give up and which to take:

- :func:`share` deals the partitions round-robin over the members in sorted order, so every worker computes the
  same split from the same view;
- a partition the view hands to another member is given up at once;
- a partition is taken only when two successive views agree on it, so the worker that held it has had a beat to
  give it up. A partition two workers hold for a moment anyway (views differ for a beat) is safe: every commit
  is a compare-and-set on the stored offset, so the second writer is fenced and reloads.

Two workers, then a third one joining (one column per beat)::

    view   {a,b}          {a,b,c}             {a,b,c}
    a      holds 0,2,4    gives up 2,4        holds 0,3
    c      -              (its first view)    takes 2,5 (two views agree)

>>> share(range(6), ["b", "a"], "a")
frozenset({0, 2, 4})
>>> own = Ownership("c", range(6))
>>> own.update(["a", "b", "c"])  # one view: nothing taken yet
(frozenset(), frozenset())
>>> own.update(["a", "b", "c"])  # two views agree: taken
(frozenset(), frozenset({2, 5}))
>>> own.update(["c"])  # the others are gone: everything, once the next view agrees
(frozenset(), frozenset())
>>> sorted(own.update(["c"])[1])
[0, 1, 3, 4]
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol


def owner_id() -> str:
    """An id unique to one holder in this process: ``<host>:<PID>:<random>`` (a forecaster's lease, an ingest
    worker's membership); :func:`tidecast.live.dead_on_this_host` reads the host and PID back.

    >>> owner_id().split(":")[1] == str(os.getpid())
    True
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Membership(Protocol):
    """The live ingest workers (the port; :class:`~tidecast.stream.adapters.ingest_members.RedisMembership`
    is the live one)."""

    def beat(self, member: str, ttl_ms: int) -> list[str]: ...

    def leave(self, member: str) -> None: ...


class MemoryMembership:
    """A :class:`Membership` in process memory (unit tests): members lapse ``ttl_ms`` after their last beat.

    >>> clock = [0.0]
    >>> members = MemoryMembership(clock=lambda: clock[0])
    >>> members.beat("a", 6000), members.beat("b", 6000)
    (['a'], ['a', 'b'])
    >>> clock[0] = 7.0
    >>> members.beat("b", 6000)
    ['b']
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.until: dict[str, float] = {}

    def beat(self, member: str, ttl_ms: int) -> list[str]:
        now = self.clock()
        self.until = {m: t for m, t in self.until.items() if t > now}
        self.until[member] = now + ttl_ms / 1000
        return sorted(self.until)

    def leave(self, member: str) -> None:
        self.until.pop(member, None)


def share(partitions: Iterable[int], members: Sequence[str], me: str) -> frozenset[int]:
    """The partitions ``me`` holds when ``members`` split ``partitions`` round-robin in sorted member order
    (none when ``me`` is not among them)."""
    order = sorted(set(members))
    if me not in order:
        return frozenset()
    mine = order.index(me)
    return frozenset(p for i, p in enumerate(sorted(partitions)) if i % len(order) == mine)


class Ownership:
    """The partitions member ``me`` holds, updated from each view of the live members (see the module
    docstring)."""

    def __init__(self, me: str, partitions: Iterable[int]) -> None:
        self.me = me
        self.partitions = tuple(sorted(partitions))
        self.held: frozenset[int] = frozenset()
        self._last: frozenset[int] = frozenset()  # what the previous view gave this member

    def update(self, members: Sequence[str]) -> tuple[frozenset[int], frozenset[int]]:
        """Apply one view: ``(given_up, taken)``, both possibly empty; :attr:`held` is updated."""
        target = share(self.partitions, members, self.me)
        given_up = self.held - target
        taken = (target & self._last) - self.held
        self.held = (self.held - given_up) | taken
        self._last = target
        return given_up, taken

    def forget(self) -> frozenset[int]:
        """Drop everything (this member's view is stale: it could not beat): returns what was held."""
        given_up, self.held, self._last = self.held, frozenset(), frozenset()
        return given_up
