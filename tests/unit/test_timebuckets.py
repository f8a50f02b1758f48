"""Durations and bucket arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidecast.stream.timebuckets import BUCKET_ORIGIN_MS, Buckets, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("1d", 86400), ("7d", 604800),
                                               ("2w", 1209600), (" 2h ", 7200)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1.5h", "-1h", "1y", "1 hour"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_daily_buckets_are_utc_days() -> None:
    # 2026-01-05 (a Monday):  [00:00 ---- day k ---- 24:00)[00:00 ---- day k+1 ...
    b = Buckets(86_400)
    monday = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)
    k = b.index(monday)
    assert b.start_ms(k) == monday
    assert b.index(monday - 1) == k - 1
    assert b.index(monday + 86_400_000 - 1) == k
    assert b.end_ms(k) == monday + 86_400_000


def test_weekly_buckets_start_on_monday() -> None:
    b = Buckets(7 * 86_400)
    sunday_night = int(datetime(2026, 1, 11, 23, 59, tzinfo=UTC).timestamp() * 1000)
    start = datetime.fromtimestamp(b.start_ms(b.index(sunday_night)) / 1000, tz=UTC)
    assert start == datetime(2026, 1, 5, tzinfo=UTC) and start.weekday() == 0


def test_hourly_buckets_align_to_the_epoch() -> None:
    assert Buckets(3600).start_ms(0) % 3_600_000 == 0
    assert BUCKET_ORIGIN_MS % 86_400_000 == 0


@given(st.integers(0, 7_258_118_400_000), st.sampled_from([60, 3600, 86_400, 604_800]))
def test_every_instant_falls_in_exactly_its_bucket(ts: int, size: int) -> None:
    b = Buckets(size)
    i = b.index(ts)
    assert b.start_ms(i) <= ts < b.end_ms(i)
