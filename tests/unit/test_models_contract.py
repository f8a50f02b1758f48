"""One model contract, run over every forecaster: the online learner and every baseline behind the same interface.

Each forecaster is driven the way the live loop drives it: at every closed bucket ``t`` it learns from a panel
history ending at ``t`` (the series seen so far), then forecasts ``t+1 .. t+H`` for those series.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from tidecast.models import checkpoint
from tidecast.models.baselines import BASELINE_NAMES, make_baseline
from tidecast.models.baselines.panel_adapter import BaselineLearner
from tidecast.models.features import CHANNELS, REVENUE, UNITS
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.models.quantiles import DEFAULT_QUANTILES

torch.set_num_threads(1)
DAY = 86_400
H, Q = 3, DEFAULT_QUANTILES
S, T, L = 6, 36, 12  # series, buckets, panel length
NEW_SERIES, NEW_AT = 5, 20  # series 5 appears at bucket 20
SMALL = LearnerConfig(horizon=H, quantiles=Q, lags=8, aux_lags=2, scale_window=8, hidden=16, batch_size=32,
                      steps_per_learn=1, replay_capacity=64, replay_add=16, sku_buckets=64, store_buckets=8)
BASELINE_KW: dict[str, dict[str, Any]] = {"lightgbm": {"num_boost_round": 5, "refit_every": 10, "num_threads": 1}}

Factory = Callable[[], Any]
FORECASTERS: dict[str, Factory] = {"tidecast": lambda: OnlineLearner(SMALL)}
for _name in BASELINE_NAMES:
    FORECASTERS[_name] = lambda name=_name: BaselineLearner(
        make_baseline(name, season=7, quantiles=Q, horizon=H, **BASELINE_KW.get(name, {}))
    )


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Full history ``[S, T, F]`` (intermittent counts, some zero runs) and each series' first bucket."""
    rng = np.random.default_rng(seed)
    full = np.zeros((S, T, len(CHANNELS)), np.float32)
    rate = np.array([0.3, 1.0, 3.0, 8.0, 0.0, 4.0])[:, None] * (1 + (np.arange(T) % 7 == 5))
    full[..., UNITS] = rng.poisson(rate)
    full[..., REVENUE] = full[..., UNITS] * 2.0
    seen = np.array([0, 0, 3, 0, 0, NEW_AT])
    full[np.arange(T)[None, :] < seen[:, None]] = 0.0
    return full, seen


def panel(full: np.ndarray, seen: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """The live loop's view at bucket ``t``: the series seen so far, the last ``L`` buckets (0 before the data)."""
    rows = np.flatnonzero(seen <= t)
    hist = np.zeros((len(rows), L, full.shape[2]), np.float32)
    lo = max(0, t - L + 1)
    hist[:, L - (t + 1 - lo):] = full[rows, lo : t + 1]
    return hist, seen[rows], [f"st{i % 2}" for i in rows], [f"sku{i}" for i in rows]


def drive(model: Any, full: np.ndarray, seen: np.ndarray, ts: range) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Learn then forecast at every bucket of ``ts``; the forecasts by bucket."""
    out = {}
    for t in ts:
        args = (*panel(full, seen, t), t, DAY)
        info = model.learn(*args)
        assert not info["skipped"] and info["model_version"] == model.model_version
        quantiles, mean = model.forecast(*args)
        out[t] = (np.asarray(quantiles).copy(), np.asarray(mean).copy())
    return out


START = 4
ALL = range(START, T)


@pytest.fixture(params=sorted(FORECASTERS), scope="module")
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def reference(name: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    full, seen = data()
    return drive(FORECASTERS[name](), full, seen, ALL)


def same(a: dict[int, tuple[np.ndarray, np.ndarray]], b: dict[int, tuple[np.ndarray, np.ndarray]]) -> bool:
    return a.keys() == b.keys() and all(
        a[t][0].tobytes() == b[t][0].tobytes() and a[t][1].tobytes() == b[t][1].tobytes() for t in a
    )


def test_forecasts_are_well_formed(name: str, reference: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    _, seen = data()
    for t, (quantiles, mean) in reference.items():
        n = int((seen <= t).sum())
        assert quantiles.shape == (n, H, len(Q)) and mean.shape == (n, H), (name, t)
        assert np.isfinite(quantiles).all() and (quantiles >= 0).all(), (name, t)
        assert (np.diff(quantiles, axis=2) >= 0).all(), (name, t)
        assert np.isfinite(mean).all() and (mean >= 0).all(), (name, t)
    assert int(FORECASTERS[name]().min_history) >= 1


def test_forecasts_are_prequential(name: str, reference: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Changing the buckets after ``cut`` changes no forecast made at or before ``cut``."""
    full, seen = data()
    cut = 24
    other = full.copy()
    other[:, cut + 1 :, UNITS] = np.random.default_rng(9).poisson(20.0, (S, T - cut - 1))
    changed = drive(FORECASTERS[name](), other, seen, ALL)
    assert same({t: reference[t] for t in ALL if t <= cut}, {t: changed[t] for t in ALL if t <= cut})
    assert not same({t: reference[t] for t in ALL if t > cut}, {t: changed[t] for t in ALL if t > cut})


def test_a_new_series_is_forecast_from_its_first_bucket(
    name: str, reference: dict[int, tuple[np.ndarray, np.ndarray]]
) -> None:
    before, first = reference[NEW_AT - 1], reference[NEW_AT]
    assert before[0].shape[0] == S - 1 and first[0].shape[0] == S  # the new series is the last row
    assert np.isfinite(first[0][-1]).all() and np.isfinite(first[1][-1]).all()


def test_learning_a_bucket_twice_is_a_no_op(name: str, reference: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    full, seen = data()
    model = FORECASTERS[name]()
    again = {}
    for t in ALL:
        args = (*panel(full, seen, t), t, DAY)
        model.learn(*args)
        version = model.model_version
        repeat = model.learn(*args)
        assert repeat["skipped"] and model.model_version == version
        quantiles, mean = model.forecast(*args)
        again[t] = (np.asarray(quantiles).copy(), np.asarray(mean).copy())
    assert same(again, reference)


def test_fresh_instances_are_deterministic(name: str, reference: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    full, seen = data()
    assert same(drive(FORECASTERS[name](), full, seen, ALL), reference)


def test_state_dict_round_trip(name: str, reference: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """A model restored from a (weights-only) checkpoint mid-run continues exactly like the original."""
    full, seen = data()
    mid = 22
    first = FORECASTERS[name]()
    drive(first, full, seen, range(START, mid + 1))
    restored = FORECASTERS[name]()
    restored.load_state_dict(checkpoint.loads(checkpoint.dumps(first.state_dict())))
    if getattr(restored, "supports_state", True):
        assert restored.model_version == first.model_version
        assert same(drive(restored, full, seen, range(mid + 1, T)), {t: reference[t] for t in range(mid + 1, T)})
    else:  # only the counters travel: the model starts afresh and warms up on the history it is given
        rest = drive(restored, full, seen, range(mid + 1, T))
        assert all(np.isfinite(q).all() and (q >= 0).all() for q, _ in rest.values())


def test_every_baseline_is_covered() -> None:
    assert set(BASELINE_NAMES) < set(FORECASTERS) and "tidecast" in FORECASTERS


def test_a_baseline_forecast_needs_its_bucket_learned() -> None:
    full, seen = data()
    model = FORECASTERS["naive"]()
    with pytest.raises(ValueError, match="learned first"):
        model.forecast(*panel(full, seen, 10), 10, DAY)
    model.learn(*panel(full, seen, 10), 10, DAY)
    with pytest.raises(ValueError, match="learned first"):
        model.forecast(*panel(full, seen, 11), 11, DAY)
