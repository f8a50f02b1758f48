"""Baseline forecasters, streaming and vectorised over series, all with the :class:`Baseline` protocol.

``update(y [S])`` learns one bucket, ``forecast() -> [S, H, Q]`` forecasts the next H buckets; quantiles
come from each baseline's own past errors. ``make_baseline(name, ...)`` builds one by name.

Example:
    >>> import numpy as np
    >>> y = np.array([[0.0, 2.0, 1.0, 0.0, 3.0, 1.0, 2.0, 0.0]])
    >>> for name in BASELINE_NAMES[:5]:
    ...     b = make_baseline(name, season=4, quantiles=(0.1, 0.5, 0.9), horizon=2).fit(y)
    ...     print(name, b.point_forecast().round(3).tolist())
    naive [[0.0, 0.0]]
    seasonal_naive [[3.0, 1.0]]
    moving_average [[1.125, 1.125]]
    croston [[1.104, 1.104]]
    tsb [[1.091, 1.091]]
"""

from __future__ import annotations

from typing import Any

from .base import DEFAULT_QUANTILES, Baseline, StreamingBaseline
from .croston import Croston
from .lgbm import LightGBMTweedie
from .moving_average import MovingAverage
from .naive import Naive
from .river_ts import RiverTS
from .seasonal_naive import SeasonalNaive
from .tsb import TSB

__all__ = [
    "BASELINE_NAMES",
    "DEFAULT_QUANTILES",
    "TSB",
    "Baseline",
    "Croston",
    "LightGBMTweedie",
    "MovingAverage",
    "Naive",
    "RiverTS",
    "SeasonalNaive",
    "StreamingBaseline",
    "make_baseline",
]

_CLASSES: dict[str, type[StreamingBaseline]] = {
    "naive": Naive,
    "seasonal_naive": SeasonalNaive,
    "moving_average": MovingAverage,
    "croston": Croston,
    "tsb": TSB,
    "river": RiverTS,
    "lightgbm": LightGBMTweedie,
}
BASELINE_NAMES: tuple[str, ...] = tuple(_CLASSES)
_SEASONAL = {"seasonal_naive", "river", "lightgbm"}


def make_baseline(
    name: str,
    season: int,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    horizon: int = 28,
    **kw: Any,
) -> StreamingBaseline:
    """Build the baseline called ``name`` (one of ``BASELINE_NAMES``).

    Args:
        name: baseline name.
        season: seasonal period in buckets (24 hourly, 7 daily, 52 weekly); used by the seasonal ones.
        quantiles: the Q forecast quantiles.
        horizon: H steps.
        **kw: passed to the class (e.g. ``window=28`` for moving_average, ``alpha=0.1`` for croston / tsb).

    >>> make_baseline("tsb", season=7, horizon=3, beta=0.2).beta
    0.2
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINE_NAMES)}")
    if name in _SEASONAL:
        kw["season"] = season
    return _CLASSES[name](horizon, tuple(quantiles), **kw)
