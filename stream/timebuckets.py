"""Durations and event-time buckets.

Buckets are UTC intervals ``[start, start + size)`` aligned to :data:`BUCKET_ORIGIN_MS`, Monday
1970-01-05T00:00Z. For sizes that divide a day this is the same as aligning to the epoch; weekly
buckets then start on Mondays, as retail weeks do.

>>> parse_duration("1h"), parse_duration("7d"), parse_duration("90s")
(3600, 604800, 90)
>>> b = Buckets(86_400)
>>> b.index(b.start_ms(20_000) + 5)
20000
>>> b.iso(b.start_ms(0))
'1970-01-05T00:00:00+00:00'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

BUCKET_ORIGIN_MS = 4 * 86_400_000  # 1970-01-05T00:00:00Z, a Monday
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> int:
    """Parse ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"7d"`` or ``"1w"`` into whole seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use a number and a unit s, m, h, d or w, e.g. 1h)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest exact spelling: ``format_duration(86400) == "1d"``."""
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def to_iso(ms: int) -> str:
    """Epoch milliseconds to an ISO-8601 UTC string with offset."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def from_iso(text: str) -> int:
    """ISO-8601 with offset to epoch milliseconds: ``from_iso(to_iso(ms)) == ms``.

    >>> from_iso("1970-01-05T00:00:00+00:00") == BUCKET_ORIGIN_MS
    True
    """
    return round(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Buckets:
    """Fixed-size event-time buckets; ``index`` numbers them from :data:`BUCKET_ORIGIN_MS`."""

    seconds: int

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("bucket size must be positive")

    @property
    def ms(self) -> int:
        return self.seconds * 1000

    def index(self, ts_ms: int) -> int:
        """The bucket holding ``ts_ms``."""
        return (ts_ms - BUCKET_ORIGIN_MS) // (self.seconds * 1000)

    def start_ms(self, index: int) -> int:
        return BUCKET_ORIGIN_MS + index * self.seconds * 1000

    def end_ms(self, index: int) -> int:
        """Exclusive end of bucket ``index``."""
        return BUCKET_ORIGIN_MS + (index + 1) * self.seconds * 1000

    def iso(self, ms: int) -> str:
        return to_iso(ms)


def season_for(bucket_seconds: int) -> int:
    """Seasonal period in buckets: a day of sub-day buckets, a week of sub-week ones, 52 weeks of weeks.

    >>> season_for(3600), season_for(86_400), season_for(604_800), season_for(5 * 86_400)
    (24, 7, 52, 1)
    """
    day, week = 86_400, 604_800
    if bucket_seconds < day and day % bucket_seconds == 0:
        return day // bucket_seconds
    if bucket_seconds < week and week % bucket_seconds == 0:
        return week // bucket_seconds
    if bucket_seconds == week:
        return 52
    return 1
