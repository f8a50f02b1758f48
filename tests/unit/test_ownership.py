"""How the ingest workers split the partitions from views of the live workers (stream/ownership.py), and the
heartbeat that keeps a worker's membership (consumers/heartbeat.py)."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from tidecast.consumers.heartbeat import Heartbeat
from tidecast.stream.ownership import MemoryMembership, Ownership, share

NAMES = ["a", "b", "c", "d", "e"]
views = st.lists(st.sets(st.sampled_from(NAMES), min_size=1), min_size=1, max_size=12)


def test_share_deals_round_robin_in_sorted_member_order() -> None:
    assert [sorted(share(range(12), ["c", "a", "b"], m)) for m in "abc"] == [
        [0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    assert share(range(4), ["a"], "z") == frozenset()


@given(views, st.integers(1, 16))
def test_workers_that_see_the_same_views_never_hold_a_partition_twice_and_cover_all_once_views_repeat(
    sequence: list[set[str]], partitions: int,
) -> None:
    owners: dict[str, Ownership] = {}
    for view in [*sequence, sequence[-1]]:  # the last view seen twice: the split has settled
        owners = {m: owners.get(m) or Ownership(m, range(partitions)) for m in view}  # the others died
        for own in owners.values():
            own.update(sorted(view))
        held = [own.held for own in owners.values()]
        assert sum(len(h) for h in held) == len(frozenset().union(*held))  # disjoint
    assert frozenset().union(*(own.held for own in owners.values())) == frozenset(range(partitions))


def test_a_worker_gives_up_at_once_and_takes_only_when_two_views_agree() -> None:
    a = Ownership("a", range(4))
    a.update(["a"])
    assert a.update(["a"]) == (frozenset(), frozenset({0, 1, 2, 3}))
    assert a.update(["a", "b"]) == (frozenset({1, 3}), frozenset())  # b's share, given up in the first view
    assert a.update(["a"]) == (frozenset(), frozenset())  # b is gone for one view: not yet
    assert a.update(["a"]) == (frozenset(), frozenset({1, 3}))
    assert a.forget() == frozenset({0, 1, 2, 3}) and a.update(["a"]) == (frozenset(), frozenset())


def test_the_heartbeat_removes_members_whose_process_is_gone() -> None:
    members = MemoryMembership()
    members.beat("host:1:dead", 60_000)
    beat = Heartbeat(members, "host:2:me", ttl_ms=60_000, interval=60.0, is_dead=lambda m: m == "host:1:dead")
    beat.start()
    view = beat.wait_first(timeout=5)
    beat.close()
    assert view is not None and view.members == ["host:2:me"]
    assert members.beat("host:3:other", 60_000) == ["host:3:other"]  # removed from the set, and the closer left


def test_a_stuck_loop_stops_the_beats_so_its_membership_lapses() -> None:
    members = MemoryMembership()
    beat = Heartbeat(members, "stuck", ttl_ms=100, interval=0.01, max_silence=0.05)
    beat.start()
    assert beat.wait_first(timeout=5) is not None
    time.sleep(0.5)  # the loop never asks for a view again
    try:
        assert members.beat("other", 100) == ["other"]
        first = beat.latest()  # the loop is back: the beats resume, and a new view says it had lapsed
        deadline = time.monotonic() + 5
        view = first
        while (view is None or view is first) and time.monotonic() < deadline:
            time.sleep(0.01)
            view = beat.latest()
        assert view is not None and view is not first and "stuck" in view.members and view.lapsed
    finally:
        beat.close()
