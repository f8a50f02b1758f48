"""What-if: a small learner trained through the forecaster on the synthetic stream (promotions announced ahead,
store closures planned), then asked about other plans from its checkpoint, read-only."""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import orjson
import pytest

from tidecast.models import checkpoint
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.producers.synthetic import SyntheticConfig, generate, planned_promotions
from tidecast.stream.events import parse_ts
from tidecast.stream.forecaster import CheckpointMismatch, Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.scenarios import ScenarioError, parse
from tidecast.stream.timebuckets import Buckets, to_iso
from tidecast.stream.whatif import WhatIfError, read_only, to_json, what_if
from tidecast.stream.window_store import MemoryWindowStore

DAILY = Buckets(86_400)
LEARNER = LearnerConfig(horizon=3, lags=8, aux_lags=2, scale_window=8, hidden=32, batch_size=128, steps_per_learn=4,
                        max_steps_per_learn=4, replay_capacity=2048, sku_buckets=64, store_buckets=8, plans=True,
                        lr=1e-2, seed=1)
# seed 1: this small model, trained on 75 days, learns a promotion's lift on every series with seeds 1, 2 and 3;
# with seed 0 (since closed days are decided by the plan, not learned) its four slowest series (0.1-1.2 units a
# day) got a lift of 0.80-0.85, the other eight 1.17-1.24.
CONFIG = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=40, quantiles=LEARNER.quantiles,
                          inputs=("sales:0",))


@dataclass
class Trained:
    store: MemoryWindowStore
    blob: bytes
    sink: MemorySink
    last_closed: int


def stream(days: int, closed_share: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Synthetic sales with promotions announced 3 days ahead, and each store closed on about one day in five
    (no sales; a store plan ``open: false`` announced 3 days ahead, every other day ``open: true``)."""
    config = SyntheticConfig(series=24, days=days, seed=3, clicks=False, stores=2)
    rng = random.Random(4)
    closed = {(store, day) for store in ("s0", "s1") for day in range(days) if rng.random() < closed_share}

    def day_of(ts: str) -> int:
        return DAILY.index(parse_ts(ts)) - DAILY.index(parse_ts(config.start.isoformat()))

    sales = [doc for doc in generate(config) if (doc["store"], day_of(doc["ts"])) not in closed]
    promos = [doc for doc in planned_promotions(config, ahead_days=3)
              if (doc["store"], day_of(doc["for"])) not in closed]
    opens = []
    for store in ("s0", "s1"):
        for day in range(3, days + 3):
            target = config.start + timedelta(days=day, hours=12)
            opens.append({"event_id": f"open-{store}-{day}", "type": "plan", "store": store,
                          "ts": (target - timedelta(days=3)).isoformat(), "for": target.isoformat(),
                          "open": (store, day) not in closed})
    return sales, sorted(promos + opens, key=lambda doc: doc["ts"])


@pytest.fixture(scope="module")
def trained() -> Trained:
    sales, plans = stream(days=75)
    store = MemoryWindowStore()
    for topic, docs in (("plans", plans), ("sales", sales)):
        ingestor = PartitionIngestor(topic, 0, DAILY, 0, CONFIG.retention, store.load_partition(topic, 0))
        batch = ingestor.apply([Record(i, orjson.dumps(doc)) for i, doc in enumerate(docs)])
        assert store.commit(batch) and not batch.rejects
    checkpoints, sink = MemoryCheckpoints(), MemorySink()
    loop = Forecaster(CONFIG, store, OnlineLearner(LEARNER), sink, checkpoints, checkpoint.dumps, checkpoint.loads)
    loop.step()
    assert loop.last_closed is not None and checkpoints.blob is not None
    return Trained(store, checkpoints.blob, sink, loop.last_closed)


def resumed(trained: Trained, config: ForecasterConfig = CONFIG) -> Forecaster:
    return read_only(config, trained.store, OnlineLearner(LEARNER), trained.blob, checkpoint.loads)


def snapshot(store: MemoryWindowStore) -> bytes:
    """Everything the store holds (a read may leave empty entries in its default dicts: not a write)."""

    def plain(value: object) -> object:
        if isinstance(value, dict):
            kept = {k: plain(v) for k, v in value.items()}
            return {k: v for k, v in sorted(kept.items(), key=repr) if v != {}}
        return value

    return pickle.dumps(plain(dict(vars(store))))


def rows(text: str) -> list:
    return parse(text, "scenarios.jsonl")


def test_a_promotion_raises_its_bucket_and_a_closure_gives_zero(trained: Trained) -> None:
    before = snapshot(trained.store)
    day = to_iso(DAILY.start_ms(trained.last_closed + 2))
    report = what_if(resumed(trained), rows(
        f'{{"scenario": "promo", "store": "s1", "for": "{day}", "promo": true}}\n'
        f'{{"scenario": "no promo", "store": "s1", "for": "{day}", "promo": false}}\n'
        f'{{"scenario": "closed", "store": "s0", "for": "{day}", "open": false}}\n'
        f'{{"scenario": "open", "store": "s0", "for": "{day}", "open": true}}\n'))
    by = {(o.scenario, o.series): o for o in report.outcomes}
    promo, none = by["promo", "s1:sku0005"], by["no promo", "s1:sku0005"]
    assert promo.plans[1][0] is True and none.plans[1][0] is False and promo.plans[0] == promo.baseline_plans[0]
    on = {o.series: o.mean[1] for o in report.outcomes if o.scenario == "promo"}
    off = {o.series: o.mean[1] for o in report.outcomes if o.scenario == "no promo"}
    assert len(on) == 12 and all(on[name] > off[name] for name in on), (on, off)  # every series of s1
    assert sum(on.values()) > 1.1 * sum(off.values())
    closed = [o for o in report.outcomes if o.scenario == "closed"]
    opened = {o.series: o for o in report.outcomes if o.scenario == "open"}
    assert len(closed) == 12 and all(o.series.startswith("s0:") for o in closed)
    assert sum(o.mean[1] for o in closed) < 0.1 * sum(o.mean[1] for o in opened.values())
    assert all(o.quantiles[1, 0] < 0.5 for o in closed)  # the low quantile of a closed day: under half a unit
    # (p10 and p90 are published unrounded, the median as a whole count: docs/architecture.md)
    assert snapshot(trained.store) == before  # nothing written to the store


def test_the_baseline_is_what_the_last_close_published(trained: Trained) -> None:
    report = what_if(resumed(trained), rows('{"scenario": "x", "store": "s1", "price": 1.0}'))
    batch, names, _, mean = trained.sink.published[-1]
    for outcome in report.outcomes:
        i = names.index(outcome.series)
        np.testing.assert_allclose(outcome.baseline_mean, mean[i], rtol=1e-4, atol=1e-4)
    assert report.first_ms == batch.origin_ms and len(trained.sink.published) == trained.last_closed - min(
        trained.store.buckets()) + 1


def test_the_json_document(trained: Trained) -> None:
    doc = to_json(what_if(resumed(trained), rows('{"scenario": "p", "store": "s0", "sku": "sku0002", "promo": true}')))
    assert doc["last_closed"] == to_iso(DAILY.start_ms(trained.last_closed))
    (scenario,) = doc["scenarios"]
    (series,) = scenario["series"]
    assert scenario["scenario"] == "p" and series["series"] == "s0:sku0002" and len(series["buckets"]) == 3
    first = series["buckets"][0]
    assert first["changed"] and first["plan"]["promo"] is True
    assert first["difference"]["mean"] == pytest.approx(first["scenario"]["mean"] - first["baseline"]["mean"])
    assert len(first["scenario"]["quantiles"]) == len(LEARNER.quantiles)


def test_unknown_series_and_buckets_outside_the_horizon_are_refused(trained: Trained) -> None:
    loop = resumed(trained)
    with pytest.raises(WhatIfError, match="unknown series 's1:nope'"):
        what_if(loop, rows('{"scenario": "x", "store": "s1", "sku": "nope", "promo": true}'))
    with pytest.raises(WhatIfError, match="unknown store 's9'"):
        what_if(loop, rows('{"scenario": "x", "store": "s9", "promo": true}'))
    late = to_iso(DAILY.start_ms(trained.last_closed + 4))
    with pytest.raises(WhatIfError, match="outside the horizon"):
        what_if(loop, rows(f'{{"scenario": "x", "store": "s1", "for": "{late}", "promo": true}}'))
    past = to_iso(DAILY.start_ms(trained.last_closed))
    with pytest.raises(WhatIfError, match="outside the horizon"):
        what_if(loop, rows(f'{{"scenario": "x", "store": "s1", "for": "{past}", "promo": true}}'))


def test_a_checkpoint_of_another_shape_is_refused(trained: Trained) -> None:
    with pytest.raises(CheckpointMismatch, match="horizon"):
        read_only(CONFIG, trained.store, OnlineLearner(replace(LEARNER, horizon=4)), trained.blob, checkpoint.loads)


@pytest.mark.parametrize(("text", "name", "message"), [
    ('{"scenario": "x", "store": "1", "Promo": true}', "s.jsonl", "unknown field 'Promo'"),
    ('{"scenario": "x", "store": "1"}', "s.jsonl", "changes nothing"),
    ('{"store": "1", "promo": true}', "s.jsonl", "field 'scenario'"),
    ('{"scenario": "x", "store": "1", "promo": "maybe"}', "s.jsonl", "'promo' must be true or false"),
    ("scenario,store,price\nx,1,-3\n", "s.csv", "'price' must be within"),
    ('{"scenario": "x", "store": "1", "until": "2026-01-01", "promo": true}', "s.jsonl", "'until' needs 'for'"),
    ("", "s.jsonl", "no scenario row"),
])
def test_bad_scenario_files_say_which_row(text: str, name: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse(text, name)


def test_csv_and_json_arrays_read_alike() -> None:
    csv = "scenario,store,sku,for,until,promo,price,open,event\nsale,1,all,2015-08-03,2015-08-05,yes,,,null\n"
    array = ('[{"scenario": "sale", "store": "1", "sku": "all", "for": "2015-08-03", "until": "2015-08-05", '
             '"promo": true, "event": null}]')
    assert [row[:-1] for row in parse(csv, "s.csv")] == [row[:-1] for row in parse(array, "s.json")]
    (row,) = parse(csv, "s.csv")
    assert row.values == (True, None, None, "") and row.last_ms - row.first_ms == 2 * 86_400_000
