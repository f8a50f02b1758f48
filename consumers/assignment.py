"""Which topic-partitions an ingest worker holds: its membership heartbeat and its share, as Kafka partitions.

:class:`Assignment` ties the heartbeat (:mod:`tidecast.consumers.heartbeat`) to the pure split of the
partition numbers (:class:`~tidecast.stream.ownership.Ownership`) and turns numbers into the input topics'
``TopicPartition``\\ s. The worker asks :meth:`Assignment.follow` between polls and applies the
:class:`Change` (drain and forget what is given up, load and seek what is taken, assign the held ones).

A view older than the session timeout, or lapsed, means the others may have counted this worker out: the
change then ``dropped`` everything (its uncommitted batches would be fenced anyway) and the share is taken
again from the next views.

>>> from tidecast.stream.ownership import MemoryMembership
>>> assignment = Assignment(MemoryMembership(), Settings(topic_prefix="t.", heartbeat_interval_ms=10))
>>> assignment.start({"t.sales": {0, 1}, "t.clicks": {0, 1}})
>>> change = None
>>> while change is None or not change.taken:
...     _ = assignment.heartbeat.wait_first(timeout=5); time.sleep(0.02); change = assignment.follow()
>>> sorted((tp.topic, tp.partition) for tp in assignment.held())
[('t.clicks', 0), ('t.clicks', 1), ('t.sales', 0), ('t.sales', 1)]
>>> assignment.close()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from kafka import TopicPartition

from tidecast.config import ServiceError, Settings
from tidecast.consumers.heartbeat import Heartbeat
from tidecast.stream.ownership import Membership, Ownership, owner_id

log = logging.getLogger(__name__)

MAX_LOOP_SILENCE = 45.0
"""Seconds the poll loop may go without reading a membership view before its heartbeat stops beating, so the
other workers take its partitions (Kafka's ``max.poll.interval.ms``); ``tidecast run`` closes buckets between
polls, and a close of a large panel takes seconds to a minute: the limit is generous."""


class Change(NamedTuple):
    """What one view changes: partitions ``dropped`` (the membership lapsed: fenced), ``given_up`` (to another
    worker: drain them first) and ``taken`` (load them from the store)."""

    dropped: list[TopicPartition]
    given_up: list[TopicPartition]
    taken: list[TopicPartition]


class Assignment:
    """An ingest worker's membership and the topic-partitions it holds (see the module docstring)."""

    def __init__(self, members: Membership, settings: Settings,
                 member_is_dead: Callable[[str], bool] = lambda member: False) -> None:
        self.settings = settings
        member = owner_id()
        self.heartbeat = Heartbeat(members, member, settings.session_timeout_ms,
                                   settings.heartbeat_interval_ms / 1000, max_silence=MAX_LOOP_SILENCE,
                                   is_dead=member_is_dead)
        self.ownership = Ownership(member, ())
        self.topics: dict[str, set[int]] = {}
        self._view_at: float | None = None

    def start(self, topics: dict[str, set[int] | None]) -> None:
        """Start beating, for the input ``topics`` (topic -> its partition numbers, None when the broker does
        not know it: skipped with a warning); at least one must exist."""
        for topic in (topic for topic, numbers in topics.items() if numbers is None):
            log.warning("topic %s does not exist: not read", topic)
        self.topics = {topic: set(numbers or ()) for topic, numbers in topics.items()}
        numbers = set().union(*self.topics.values())
        if not numbers:
            raise ServiceError(f"none of the input topics {', '.join(topics)} exists: create them (`tidecast "
                               "infra up` does) or check TIDECAST_TOPIC_PREFIX")
        self.ownership = Ownership(self.ownership.me, numbers)
        self.heartbeat.start()

    def follow(self) -> Change | None:
        """The change the newest view asks for, None when there is none (no new view, nothing moves)."""
        view = self.heartbeat.latest()
        if view is None:
            return None
        stale = time.monotonic() - view.at > self.settings.session_timeout_ms / 1000
        dropped = self.partitions(self.ownership.forget()) if view.lapsed or stale else []
        if stale or view.at == self._view_at:
            return Change(dropped, [], []) if dropped else None
        self._view_at = view.at
        given_up, taken = self.ownership.update(view.members)
        if not (dropped or given_up or taken):
            return None
        return Change(dropped, self.partitions(given_up), self.partitions(taken))

    def held(self) -> list[TopicPartition]:
        return self.partitions(self.ownership.held)

    def partitions(self, numbers: frozenset[int]) -> list[TopicPartition]:
        """The input topics' partitions of these partition numbers (a topic with fewer partitions: skipped)."""
        return [TopicPartition(topic, p) for p in sorted(numbers) for topic, has in self.topics.items() if p in has]

    def close(self) -> None:
        self.heartbeat.close()
