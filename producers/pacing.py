"""Replay events on an accelerated clock: event time runs ``speed`` times faster than wall time.

>>> naps = []
>>> docs = [{"ts": "2026-01-05T00:00:00+00:00"}, {"ts": "2026-01-05T01:00:00+00:00"}]
>>> list(paced(docs, speed=3600.0, clock=lambda: 0.0, sleep=naps.append)) == docs, naps
(True, [1.0])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime


def paced(
    docs: Iterable[dict],
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict]:
    """Yield ``docs`` (sorted by ``ts``) no sooner than ``(ts - first ts) / speed`` seconds after the first."""
    if speed <= 0:
        yield from docs
        return
    first_ts: float | None = None
    start = 0.0
    for doc in docs:
        ts = _seconds(doc["ts"])
        if first_ts is None:
            first_ts, start = ts, clock()
        ahead = (ts - first_ts) / speed - (clock() - start)
        if ahead > 0.001:
            sleep(ahead)
        yield doc


def _seconds(ts: str | int | float) -> float:
    if isinstance(ts, str):
        return datetime.fromisoformat(ts).timestamp()
    return ts / 1000.0
