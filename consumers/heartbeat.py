"""An ingest worker's membership heartbeat, on a thread of its own.

The thread renews the worker's membership (:class:`~tidecast.stream.ownership.Membership`) every heartbeat
interval and keeps the latest view of the live workers for the worker's loop, which applies it between polls.
On its own thread, a busy loop (``tidecast run`` closing a bucket between polls for a minute) keeps its
membership, as Kafka's heartbeat thread does; a loop that has not asked for a view for ``max_silence`` seconds
(stuck) stops the beats, so the others take its partitions, as Kafka's ``max.poll.interval.ms`` does.

A member that ``is_dead`` says is gone (the live wiring: a worker on this host whose process no longer exists,
as a SIGKILLed worker restarted by a supervisor leaves behind) is removed from the membership at once, so its
partitions move now rather than after the session timeout.

A view is ``lapsed`` when, since the previous view the loop read, two successful beats were further apart than
the session timeout (Redis was away, the process was stopped): the others may have counted this worker out
meanwhile, so the worker gives everything up and takes its share again from the next views.

>>> from tidecast.stream.ownership import MemoryMembership
>>> beat = Heartbeat(MemoryMembership(), "w1", ttl_ms=6000, interval=60.0)
>>> beat.start(); view = beat.wait_first(timeout=5); beat.close()
>>> view.members, view.lapsed
(['w1'], False)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tidecast.stream.ownership import Membership

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class View:
    """The live members as one beat saw them, ``at`` its monotonic time."""

    members: list[str]
    at: float
    lapsed: bool


class Heartbeat:
    """Beats for ``member`` every ``interval`` seconds on a daemon thread (see the module docstring)."""

    def __init__(self, members: Membership, member: str, ttl_ms: int, interval: float,
                 max_silence: float = 45.0, is_dead: Callable[[str], bool] = lambda member: False) -> None:
        self.members, self.member, self.ttl_ms, self.is_dead = members, member, ttl_ms, is_dead
        self.interval, self.max_silence = interval, max_silence
        self._view: View | None = None
        self._lapse = False
        self._lock = threading.Lock()
        self._asked = time.monotonic()
        self._done = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tidecast-membership", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def latest(self) -> View | None:
        """The newest view (None before the first beat), ``lapsed`` if a lapse happened since the last call;
        tells the thread the loop is alive."""
        self._asked = time.monotonic()
        with self._lock:
            view, self._lapse = self._view, False
        return view

    def wait_first(self, timeout: float) -> View | None:
        """Block until the first beat answered (or ``timeout``): the newest view."""
        self._first.wait(timeout)
        return self.latest()

    def close(self) -> None:
        """Stop beating and leave the membership at once (best effort: a lapse does the same later)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            self.members.leave(self.member)
        except Exception as exc:  # Redis away: the membership lapses after the session timeout instead
            log.info("could not leave the membership (%s): it lapses by itself", exc)

    def _evict_dead(self, members: list[str]) -> list[str]:
        """``members`` without the ones ``is_dead`` says are gone, which are removed from the membership."""
        dead = [m for m in members if m != self.member and self.is_dead(m)]
        for member in dead:
            log.info("removed %s from the ingest membership: its process is gone", member)
            self.members.leave(member)
        return [m for m in members if m not in dead]

    def _run(self) -> None:
        last_ok: float | None = None
        failing = stuck = False
        while not self._done.is_set():
            if time.monotonic() - self._asked > self.max_silence:
                if not stuck:
                    log.warning("the ingest loop has been stuck for over %.0f s: no more beats, the other workers "
                                "take its partitions", self.max_silence)
                stuck = True
                self._done.wait(self.interval)
                continue
            stuck = False
            try:
                members = self._evict_dead(self.members.beat(self.member, self.ttl_ms))
            except Exception as exc:  # Redis away: the loop sees the view age and the lapse
                if not failing:
                    log.warning("membership beat failed (%s): retrying every %.0f s", exc, self.interval)
                failing = True
            else:
                now = time.monotonic()
                if failing:
                    log.warning("membership beats answered again")
                failing = False
                with self._lock:
                    self._lapse |= last_ok is not None and now - last_ok > self.ttl_ms / 1000
                    self._view = View(members, now, self._lapse)
                last_ok = now
                self._first.set()
            self._done.wait(self.interval)
