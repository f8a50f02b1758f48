"""``tidecast explain``: why the live model forecasts what it does for chosen series, read-only.

:func:`explain_series` takes a forecaster resumed read-only (:func:`tidecast.stream.whatif.read_only`), builds
the inputs of its last closed bucket ``t`` as the next publish would (the panel's history, the stored plans of
the history and of ``t+1 .. t+H``), and splits each chosen series' median into the contributions of the model's
input groups (the learner's ``explain``, :mod:`tidecast.models.explain`). It also forecasts the series as
published (calibrated, not remembered), so the calibration's share shows. Nothing is learned, written or
published.

>>> from tidecast.models.learner import LearnerConfig, OnlineLearner
>>> from tidecast.stream.forecaster import ForecasterConfig
>>> from tidecast.stream.whatif import read_only
>>> from tidecast.stream.window_store import MemoryWindowStore
>>> import numpy as np
>>> learner = OnlineLearner(LearnerConfig(horizon=2, lags=4, aux_lags=2, scale_window=4, hidden=8,
...                                       sku_buckets=64, store_buckets=8, plans=True))
>>> state = {"format": "tidecast.forecaster/2", "bucket_seconds": 86_400, "horizon": 2,
...          "quantiles": [0.1, 0.5, 0.9], "last_closed": 10,
...          "panel": {"series": ["s:A"], "first_seen": [5], "last_active": [10], "t": 10},
...          "learner": learner.state_dict()}
>>> config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=7, quantiles=(0.1, 0.5, 0.9),
...                           inputs=())
>>> loop = read_only(config, MemoryWindowStore(), learner, b"blob", lambda blob: state)
>>> loop.panel.history[:, :, 0] = 5.0  # 5 units a day (the store is empty here)
>>> doc = explain_series(loop, ["s:A"])
>>> doc["series"][0]["series"], sorted(doc["series"][0]["contributions"])[:2]
('s:A', ['calendar', 'clicks and carts'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tidecast.models.quantiles import median_index
from tidecast.stream.forecaster import Forecaster
from tidecast.stream.plan_history import resolve
from tidecast.stream.timebuckets import to_iso
from tidecast.stream.whatif import WhatIfError


def explain_series(loop: Forecaster, names: Sequence[str]) -> dict:
    """The ``explain --json`` document for the series ``names`` (see the module docstring): per series, the
    network's median (units per bucket, mean over the horizon), the reference's, each group's contribution,
    the residual, and the published median; WhatIfError for an unknown series or a model without a close."""
    t, panel = loop.last_closed, loop.panel
    if t is None or panel.t is None:
        raise WhatIfError("the forecaster has closed no bucket yet: nothing to explain")
    learner: Any = loop.learner  # tidecast's OnlineLearner: it has explain() (the Learner protocol does not)
    if not hasattr(learner, "explain"):
        raise WhatIfError("this model cannot be explained (it is not tidecast's network)")
    unknown = [name for name in names if name not in panel.index]
    if unknown:
        raise WhatIfError(f"unknown series {unknown[0]!r}: the forecaster has not seen it ({len(panel)} series; "
                          "tidecast inspect series STORE:SKU)")
    horizon, length = learner.horizon, panel.length
    everyone = list(panel.series)
    plans = None
    if learner.plan_inputs:
        plans = np.zeros((len(everyone), length + horizon, 8), np.float32)
        plans[:, :length] = resolve(loop.store.read_plans(t - length + 1, t), everyone, t - length + 1, length)[0]
        plans[:, length:] = resolve(loop.store.read_plans(t + 1, t + horizon), everyone, t + 1, horizon)[0]
    stores, skus = panel.stores_and_skus(np.arange(len(everyone)))
    rows = [panel.index[name] for name in names]
    args = (panel.history, panel.first_seen, stores, skus, t, loop.config.bucket_seconds)
    found = learner.explain(*args, plans=plans, rows=rows)
    published = learner.forecast(*args, plans=plans, remember=False).quantiles[rows]  # calibrated, rounded
    mid = median_index(loop.config.quantiles)
    return {
        "last_closed": to_iso(loop.buckets.start_ms(t)),
        "first_bucket": to_iso(loop.buckets.start_ms(t + 1)),
        "horizon": horizon,
        "model_version": learner.model_version,
        "series": [{
            "series": name,
            "median": e.median,
            "reference": e.reference,
            "contributions": e.contributions,
            "residual": e.residual,
            "published_median": float(np.mean(published[k, :, mid])),
        } for k, (name, e) in enumerate(zip(names, found, strict=True))],
    }
