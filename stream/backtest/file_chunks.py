"""The backtest's input layer: file rows in event-time order, one bucket per chunk, panel zeros kept apart.

A history file is either events (one row per sale line) or a panel (one row per series and period, zeros
included). Both are read with :func:`tidecast.producers.files.read_events`; this module then

* encodes every row as the bytes a producer would send, for :meth:`PartitionIngestor.apply` to validate;
* keeps rows of a sale with ``qty == 0`` out of the event path: the live validator refuses them (a zero
  sale is no event), but in a panel they are *observed zeros*, so they become registrations of their
  series in their bucket instead, neither events nor DLQ entries;
* counts the rows flagged closed (``open`` false, such as a drugstore's Sunday): they stay what they are (an
  event, or an observed zero when nothing sold), and :attr:`Chunk.closed` says how many there were;
* groups the rows by event-time bucket (UTC), in order. :func:`chunks_in_order` streams a file that is
  already in bucket order and raises :class:`OutOfOrder` at the first row of an earlier bucket;
  :func:`chunks_sorted` reads the whole file into memory (about 200 bytes per row) and sorts it (stable).

The zeros reach the forecaster through :class:`~tidecast.stream.backtest.known_series_store.KnownSeriesStore`.

>>> from tidecast.stream.timebuckets import BUCKET_ORIGIN_MS, Buckets
>>> rows = [{"event_id": "1", "type": "sale", "ts": "2024-01-01T10:00:00+00:00", "sku": "A", "qty": 2},
...         {"event_id": "2", "type": "sale", "ts": "2024-01-01T00:00:00+00:00", "sku": "B", "qty": 0},
...         {"event_id": "3", "type": "sale", "ts": "2024-01-02T09:00:00+00:00", "sku": "A", "qty": 1}]
>>> [(c.bucket, len(c.records), c.zeros) for c in chunks_in_order(rows, Buckets(86_400))]
[(19719, 1, ['all:B']), (19720, 1, [])]
>>> chunks = list(chunks_in_order(rows[::-1], Buckets(86_400)))
Traceback (most recent call last):
...
tidecast.stream.backtest.file_chunks.OutOfOrder: row 2 is in bucket 19719, after a row of bucket 19720
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import orjson

from tidecast.stream.events import DEFAULT_STORE, MAX_ID_LENGTH, InvalidEvent, parse_ts
from tidecast.stream.timebuckets import BUCKET_ORIGIN_MS, Buckets

ROW_BYTES = 200
"""Rough memory per row held by :func:`chunks_sorted`: the encoded event (Ta Feng: 150 bytes) and 26 bytes of
offsets, time, bucket and flags."""


class OutOfOrder(ValueError):
    """The input is not in event-time bucket order; read it with :func:`chunks_sorted` instead."""


class Chunk(NamedTuple):
    """The rows of one bucket: encoded events for the ingest, and the series of its panel zeros with the
    latest time among them (None without zeros)."""

    bucket: int
    records: list[bytes]
    zeros: list[str]
    zero_ts: int | None = None
    closed: int = 0
    """Rows flagged ``open: false`` (counted, and kept as events or zeros like any other row)."""


class _Reader:
    """Turns one row into ``(ts_ms or None, item)``: the event's bytes, or the series (a str) of a panel zero."""

    def __init__(self) -> None:
        self.cache: dict[object, int | None] = {}
        self.closed = 0
        """Rows read so far that were flagged ``open: false``."""

    def ts(self, raw: object) -> int | None:
        hit = self.cache.get(raw, -1) if type(raw) in (str, int) else -1
        if hit != -1:
            return hit
        try:
            ms: int | None = parse_ts(raw)
        except InvalidEvent:
            ms = None
        if type(raw) in (str, int):
            if len(self.cache) > 65_536:
                self.cache.clear()
            self.cache[raw] = ms
        return ms

    def __call__(self, doc: dict | bytes) -> tuple[int | None, bytes | str]:
        if type(doc) is not dict:
            return None, bytes(doc)  # an unparsable line: the validator gives the reason
        if _closed(doc):
            self.closed += 1
        raw = doc.get("ts")
        ts = self.cache.get(raw, -1) if type(raw) is str else -1
        if ts == -1:
            ts = self.ts(raw)
        qty = doc.get("qty")
        if qty == 0 and ts is not None and type(qty) in (int, float) and doc.get("type", "sale") == "sale":
            series = _series(doc)
            if series is not None:
                return ts, series
        return ts, _dumps(doc)


_dumps = orjson.dumps


def _closed(doc: dict) -> bool:
    """A row flagged closed (``open: false``); a plan saying so is no row of the file."""
    return doc.get("open") is False and doc.get("type") != "plan"


def _series(doc: dict) -> str | None:
    """The series id of a row, or None when its sku or store would not pass the validator."""
    sku, store = doc.get("sku"), doc.get("store")
    if not (type(sku) is str and 0 < len(sku) <= MAX_ID_LENGTH and sku.isprintable()):
        return None
    if store is None:
        return f"{DEFAULT_STORE}:{sku}"
    if not (type(store) is str and 0 < len(store) <= MAX_ID_LENGTH and store.isprintable()) or ":" in store:
        return None
    return f"{store}:{sku}"


def chunks_in_order(docs: Iterable[dict | bytes], buckets: Buckets) -> Iterator[Chunk]:
    """Stream ``docs`` (rows of :func:`read_events`) as one :class:`Chunk` per bucket, oldest first.

    A row whose time cannot be read goes with the chunk being built (the validator rejects it later).
    Raises :class:`OutOfOrder` at the first row of a bucket older than the current one.
    """
    read = _Reader()
    origin, size = BUCKET_ORIGIN_MS, buckets.ms
    current: int | None = None
    records: list[bytes] = []
    zeros: list[str] = []
    zero_ts: int | None = None
    pending: list[bytes] = []  # unreadable rows before the first readable one
    closed = 0  # read.closed when the current chunk began
    for row, doc in enumerate(docs, start=1):
        ts, item = read(doc)
        if ts is not None:
            bucket = (ts - origin) // size
            if bucket != current:
                if current is None:
                    current, records = bucket, pending
                else:
                    if bucket < current:
                        raise OutOfOrder(f"row {row} is in bucket {bucket}, after a row of bucket {current}")
                    now_closed = read.closed - (type(doc) is dict and _closed(doc))
                    yield Chunk(current, records, zeros, zero_ts, now_closed - closed)
                    closed = now_closed
                    current, records, zeros, zero_ts = bucket, [], [], None
        if isinstance(item, str):  # a panel zero, whose time was readable (see _Reader)
            zeros.append(item)
            if ts is not None and (zero_ts is None or ts > zero_ts):
                zero_ts = ts
        elif current is None:
            pending.append(item)
        else:
            records.append(item)
    if current is not None:
        yield Chunk(current, records, zeros, zero_ts, read.closed - closed)
    elif pending:
        yield Chunk(0, pending, [], None, read.closed)


def chunks_sorted(docs: Iterable[dict | bytes], buckets: Buckets) -> Iterator[Chunk]:
    """Like :func:`chunks_in_order` for input in any order: reads everything, then sorts by bucket (stable).

    Memory: about :data:`ROW_BYTES` per row while sorting. The rows are kept in one buffer with their offsets,
    times and buckets in typed arrays: kept as 800,000 separate small objects among the temporaries of
    reading, they pinned a 4 KB allocator pool each (Ta Feng: 3.3 GB for 122 MB of rows). Rows whose time
    cannot be read keep their place after the previous readable row.

    >>> from tidecast.stream.timebuckets import Buckets
    >>> rows = [{"event_id": "3", "type": "sale", "ts": "2024-01-02T09:00:00+00:00", "sku": "A", "qty": 1},
    ...         {"event_id": "2", "type": "sale", "ts": "2024-01-01T00:00:00+00:00", "sku": "B", "qty": 0},
    ...         b"not json",
    ...         {"event_id": "1", "type": "sale", "ts": "2024-01-01T10:00:00+00:00", "sku": "A", "qty": 2}]
    >>> [(c.bucket, len(c.records), c.zeros) for c in chunks_sorted(rows, Buckets(86_400))]
    [(19719, 2, ['all:B']), (19720, 1, [])]
    """
    read = _Reader()
    index = buckets.index
    unknown = -(1 << 62)
    keys, stamps, ends = array("q"), array("q"), array("q")
    zero = bytearray()  # 1 for a panel zero (its series' name), 0 for an event's bytes
    closed = bytearray()  # 1 for a row flagged open: false
    data = bytearray()
    last: int | None = None
    for doc in docs:
        before = read.closed
        ts, item = read(doc)
        closed.append(read.closed - before)
        if ts is not None:
            last = index(ts)
        keys.append(last if last is not None else unknown)
        stamps.append(ts if ts is not None else unknown)
        if isinstance(item, str):
            zero.append(1)
            data += item.encode()
        else:
            zero.append(0)
            data += item
        ends.append(len(data))
    if not zero:
        return
    key_array = np.array(keys, dtype=np.int64)
    del keys
    known = key_array > unknown
    key_array[~known] = key_array[known].min() if known.any() else 0
    order = np.argsort(key_array, kind="stable")
    sorted_keys = key_array[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    view = memoryview(data)
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]]), strict=True):
        records: list[bytes] = []
        zeros: list[str] = []
        zero_ts: int | None = None
        shut = 0
        for i in order[lo:hi].tolist():
            shut += closed[i]
            row = bytes(view[ends[i - 1] if i else 0 : ends[i]])
            if zero[i]:
                zeros.append(row.decode())
                zero_ts = stamps[i] if zero_ts is None else max(zero_ts, stamps[i])
            else:
                records.append(row)
        yield Chunk(int(sorted_keys[lo]), records, zeros, zero_ts, shut)
