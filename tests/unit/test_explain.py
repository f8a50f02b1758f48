"""Explanations (models/explain.py): on a stream whose demand a planned promotion drives, the attribution names
the promotion; the contributions add up to the median."""

from __future__ import annotations

import numpy as np
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
