"""The hostile corpus (producers/fuzz.py): every message of it, sales and clicks alike, is rejected by the ingest
with a reason once its partition has a watermark, and not one is counted as an event."""

from __future__ import annotations

import itertools
import time

import orjson

from tidecast.producers.fuzz import CASES, HUGE_BYTES, hostile
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.ingest import FUTURE, LATE, PartitionIngestor, Record
from tidecast.stream.timebuckets import Buckets


def test_every_hostile_message_is_rejected_with_a_reason() -> None:
    docs = list(itertools.islice(generate(SyntheticConfig(series=20, days=3, seed=5)), 3000))
    assert {d["type"] for d in docs} == {"sale", "click"}
    ingestor = PartitionIngestor("sales", 0, Buckets(86_400), 7_200_000, 56,
                                 now_ms=lambda: int(time.time() * 1000), max_future_ms=86_400_000)
    warm = ingestor.apply([Record(i, orjson.dumps(d)) for i, d in enumerate(docs)])  # a watermark to be late to
    ingestor.adopt(warm)
    corpus = list(hostile(docs, 40 * len(CASES), seed=3))
    batch = ingestor.apply([Record(len(docs) + i, m.value, m.key) for i, m in enumerate(corpus)])

    assert batch.counts.ingested == batch.counts.duplicates == 0
    assert len(batch.rejects) == len(corpus) == batch.counts.invalid + batch.counts.late
    reasons = {corpus[r.offset - len(docs)].case: r.reason for r in batch.rejects}
    assert reasons.keys() == CASES.keys()
    assert all(reasons.values())
    assert reasons["ts_1970"] == LATE and reasons["ts_far_future"] == FUTURE
    far = reasons["plan_far_ahead"]  # late when built on an event older than the watermark allows
    assert far == LATE or far.startswith("field 'for' must be 1 to 56 buckets after"), far
    assert max(len(r.reason) for r in batch.rejects) < 300  # a reason quotes a short prefix, never the value


def test_the_corpus_is_deterministic_and_holds_huge_messages() -> None:
    docs = [{"event_id": "e", "type": "click", "ts": 0, "sku": "A", "action": "view"}]
    first, again = list(hostile(docs, 100, seed=9)), list(hostile(docs, 100, seed=9))
    assert first == again
    assert max(len(m.value) for m in first) > HUGE_BYTES
    assert max(len(m.key or b"") for m in first) == HUGE_BYTES






