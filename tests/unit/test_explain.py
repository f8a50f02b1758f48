"""Explanations (models/explain.py): on a stream whose demand a planned promotion drives, the attribution names
the promotion; the contributions add up to the median."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tidecast.models.explain import GROUPS, explain
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.stream.plans import OPEN, OPEN_KNOWN, PROMO, PROMO_KNOWN

torch.set_num_threads(1)

H, LAGS, DAYS, SERIES = 3, 14, 260, 24


def promo_stream(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Daily units of SERIES series over DAYS days: Poisson(4), tripled on the days a promotion runs (a fifth
    of the days, planned and known ahead); and the plans [S, DAYS + H, 8] of every day."""
    rng = np.random.default_rng(seed)
    promo = rng.random((SERIES, DAYS + H)) < 0.2
    history = np.zeros((SERIES, DAYS, 7), np.float32)
    history[:, :, 0] = rng.poisson(4.0 * np.where(promo[:, :DAYS], 3.0, 1.0))
    plans = np.zeros((SERIES, DAYS + H, 8), np.float32)
    plans[..., PROMO], plans[..., PROMO_KNOWN] = promo, 1.0
    plans[..., OPEN], plans[..., OPEN_KNOWN] = 1.0, 1.0
    return history, plans


def test_a_promotion_driven_forecast_is_explained_by_the_promotion() -> None:
    history, plans = promo_stream()
    cfg = LearnerConfig(horizon=H, lags=LAGS, aux_lags=3, scale_window=LAGS, hidden=32, batch_size=128,
                        replay_capacity=2048, sku_buckets=64, store_buckets=8, plans=True, steps_per_learn=4, seed=0)
    learner = OnlineLearner(cfg)
    seen, stores, skus = np.zeros(SERIES, np.int64), ["s"] * SERIES, [f"i{k}" for k in range(SERIES)]
    span = LAGS + H

    def window(t: int) -> tuple[np.ndarray, np.ndarray]:
        lo = t - span + 1
        return history[:, lo:t + 1], plans[:, lo:t + 1 + H]

    for t in range(span, DAYS - 1):
        hist, plan = window(t)
        learner.learn(hist, seen, stores, skus, t, 86_400, plans=plan)
    t = DAYS - 1
    hist, plan = window(t)
    plan = plan.copy()
    plan[0, -H:, PROMO], plan[1, -H:, PROMO] = 1.0, 0.0  # series 0: a promotion on every target day; 1: none
    found = explain(learner, hist, seen, stores, skus, t, 86_400, plans=plan, rows=[0, 1])
    promoted, plain = found
    contributions = promoted.contributions
    assert max(contributions, key=lambda g: abs(contributions[g])) == "promotion and other plans", contributions
    assert contributions["promotion and other plans"] > 0.3 * promoted.median  # the lift is most of the median
    assert plain.contributions["promotion and other plans"] < contributions["promotion and other plans"] / 3
    for e in found:  # complete: the groups add up to the median (up to the path's Riemann sum)
        assert set(e.contributions) == set(GROUPS)
        assert abs(e.residual) < 0.05 * max(e.median, 1.0)
    forecast = learner.forecast(hist, seen, stores, skus, t, 86_400, plans=plan, remember=False)
    assert forecast.quantiles[0, :, 1].mean() > 2 * forecast.quantiles[1, :, 1].mean()  # the model learned the lift


def test_explanations_are_the_same_in_chunks_and_published_with_each_forecast() -> None:
    import json
    from dataclasses import replace
    from pathlib import Path

    import jsonschema

    from tidecast.stream.forecaster import Forecaster, ForecasterConfig
    from tidecast.stream.ingest import PartitionIngestor, Record
    from tidecast.stream.ports import MemoryCheckpoints, MemorySink
    from tidecast.stream.timebuckets import Buckets
    from tidecast.stream.window_store import MemoryWindowStore

    cfg = LearnerConfig(horizon=H, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16, replay_capacity=64,
                        sku_buckets=64, store_buckets=8, seed=0)
    hist = np.random.default_rng(1).poisson(5.0, (5, 8, 7)).astype(np.float32)
    args = (hist, np.zeros(5, np.int64), ["s"] * 5, [f"i{k}" for k in range(5)], 7, 86_400)
    whole = explain(OnlineLearner(cfg), *args)
    chunked = explain(OnlineLearner(replace(cfg, forecast_chunk=2)), *args)  # the same seed: the same network
    for a, b in zip(chunked, whole, strict=True):  # equal up to float32 summation order
        assert a.contributions == pytest.approx(b.contributions, abs=1e-6) and a.median == pytest.approx(b.median)

    store, sink, days = MemoryWindowStore(), MemorySink(), Buckets(86_400)
    ingest = PartitionIngestor("sales", 0, days, 0, 30, store.load_partition("sales", 0))
    sales = [{"event_id": f"e{d}-{k}", "type": "sale", "ts": days.start_ms(20_000 + d), "store": "s", "sku": f"i{k}",
              "qty": 1 + (d + k) % 4} for d in range(10) for k in range(3)]
    batch = ingest.apply([Record(n, json.dumps(doc).encode()) for n, doc in enumerate(sales)])
    assert store.commit(batch)
    config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=30, quantiles=cfg.quantiles,
                              inputs=(), explain=True)
    loop = Forecaster(config, store, OnlineLearner(cfg), sink, MemoryCheckpoints(), lambda s: b"", dict)
    for bucket in range(20_000, 20_010):
        loop.close_bucket(bucket)
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs/schemas/forecast.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    published, explained = sink.published[-1], sink.explanations[-1]
    assert explained is not None and len(explained) == len(published[1]) == 3
    messages = [json.loads(v) for _, v in published[0].messages(published[1], published[2], published[3],
                                                                  explanations=explained)]
    for doc, field in zip(messages, explained, strict=True):
        validator.validate(doc)
        assert doc["explain"] == field
        parts = field["reference"] + sum(field["contributions"].values()) + field["residual"] + field["calibration"]
        assert abs(parts - field["median"]) < 1e-6  # adds up to the published median (the residual rounds)
        assert abs(field["median"] - np.mean([step[1] for step in doc["values"]])) < 0.001
