"""Score forecasts that were actually published against the actuals, next to a baseline on the same points.

Prequential by construction: a forecast with origin ``o`` was issued when bucket ``o-1`` closed, and the
scales of MASE/RMSSE/WSPL and the WRMSSE/WSPL weights (sales of the ``weight_window`` buckets before ``o``)
come from each series' history before ``o``. Duplicates (at-least-once delivery)
are dropped by ``forecast_id``. Baselines are run over the same actuals and scored on exactly the same
(series, origin, step) points as the published forecasts.

>>> import numpy as np
>>> y = np.array([[1.0, 2.0, 1.0, 2.0, 1.0, 2.0]])
>>> docs = [{"forecast_id": f"f{o}", "series": "all:A", "origin_index": o, "values": [[0.5, 1.5, 2.5]],
...          "mean": [1.5]} for o in range(2, 6)]
>>> result = score_published(docs, ["all:A"], y, None, horizon=1, quantiles=(0.1, 0.5, 0.9), season=2,
...                          warmup=0, baselines=("seasonal_naive",))
>>> result["tidecast"]["mae"], result["seasonal_naive"]["mae"], result["tidecast"]["scored"]
(0.5, 0.0, 4)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from tidecast.models.baselines import make_baseline
from tidecast.models.metrics import RunningScales, Scorer
from tidecast.models.weights import DEFAULT_WEIGHT_WINDOW, RunningSales


def score_published(
    forecasts: Iterable[dict],
    series: Sequence[str],
    actuals: np.ndarray,
    prices: np.ndarray | None,
    horizon: int,
    quantiles: tuple[float, ...],
    season: int,
    warmup: int,
    baselines: Sequence[str] = ("seasonal_naive",),
    weight_window: int = DEFAULT_WEIGHT_WINDOW,
) -> dict[str, dict]:
    """Metrics per model over every fully observed point of the published forecasts.

    ``forecasts``: documents with ``forecast_id``, ``series``, ``values`` [H][Q], ``mean`` [H] (optional: the
    median stands in without it) and ``origin_index``, the column of ``actuals`` their first step targets.
    ``actuals`` [S, T] (units per series and bucket, 0 for no sale), ``prices`` [S, T] or None. Origins
    before ``warmup`` are not scored, nor those whose H buckets are not all in ``actuals``.
    """
    index = {name: i for i, name in enumerate(series)}
    by_origin: dict[int, dict[int, tuple[list, list | None]]] = defaultdict(dict)
    seen_ids: set[str] = set()
    for doc in forecasts:
        if doc["forecast_id"] in seen_ids or doc["series"] not in index:
            continue
        seen_ids.add(doc["forecast_id"])
        by_origin[doc["origin_index"]][index[doc["series"]]] = (doc["values"], doc.get("mean"))

    n_series, n_buckets = actuals.shape
    scales = RunningScales(n_series)
    sales = RunningSales(weight_window, n_series)
    scorers = {"tidecast": Scorer(horizon, quantiles, n_series)}
    models = {name: make_baseline(name, season=season, quantiles=quantiles, horizon=horizon) for name in baselines}
    for name in models:
        scorers[name] = Scorer(horizon, quantiles, n_series)
    for origin in range(n_buckets):
        issued = by_origin.get(origin)
        if issued and origin >= warmup and origin + horizon <= n_buckets:
            idx = np.fromiter(issued, np.int64, len(issued))
            mae_scale, mse_scale = scales.scales()
            weights = sales.weights()[0][idx]
            values = np.asarray([issued[i][0] for i in idx], np.float64)
            means = None if any(issued[i][1] is None for i in idx) else np.asarray([issued[i][1] for i in idx])
            scorers["tidecast"].issue(origin, values, mae_scale[idx], mse_scale[idx], idx, means, weights)
            for name, model in models.items():
                scorers[name].issue(origin, model.forecast()[idx], mae_scale[idx], mse_scale[idx], idx,
                                    model.point_forecast()[idx], weights)
        column = actuals[:, origin]
        revenue = np.zeros(n_series) if prices is None else np.nan_to_num(column * prices[:, origin], nan=0.0)
        for scorer in scorers.values():
            scorer.observe(origin, column)
        scales.update(column)
        sales.update(column, revenue)
        for model in models.values():
            model.update(column)
    return {name: scorer.result() for name, scorer in scorers.items()}
