"""LightGBM's inputs from plans and prices (``backtest --known``): what it knows of each target bucket.

Per target bucket ``j`` of a series: the planned promo, open and event flags of ``j`` (NaN when unknown:
LightGBM's missing-value branch is the known flag), its planned price relative to the usual price
(:mod:`.known`), the promo of ``j-1`` (planned, which a closed bucket's plan was) and the price of ``j-1``
(observed when ``j-1`` has closed with a sale and a revenue, else planned), both relative to the usual price.
The model keeps, per series and bucket, the plan known one bucket before it and its observed price
(:func:`stored_column`), and learns each label with them; a forecast reads the plans known at its origin.

>>> import numpy as np
>>> from tidecast.models.baselines.known import KnownInputs
>>> k = KnownInputs(horizon=2)
>>> plans = np.zeros((1, 2, 8), np.float32); plans[0, :, :2] = 1; plans[0, 1, 4:6] = [0, 1]  # promo; t+2 closed
>>> k.begin(1, np.array([1.0]), None); k.end(plans)
>>> stored = np.full((1, 4, STORED), np.nan, np.float16)
>>> cols = forecast_columns(stored, k, None, t=2, h=1)
>>> dict(zip(PLAN_FEATURES, np.column_stack(cols)[0].tolist()))["plan_open"], len(cols) == len(PLAN_FEATURES)
(0.0, True)
"""

from __future__ import annotations

import numpy as np

from .base_rows import take
from .known import KnownInputs

__all__ = ["PLAN_FEATURES", "STORED", "forecast_columns", "stored_column", "train_columns"]

PLAN_FEATURES: tuple[str, ...] = ("plan_promo", "plan_open", "plan_event", "plan_price", "promo_prev", "price_prev")
STORED = 5
"""Kept per series and bucket: promo, open, event (NaN unknown), planned price, observed price (relative)."""


def stored_column(known: KnownInputs) -> np.ndarray:
    """float16 ``[S, 5]`` of the bucket being learned: its plan as last known before it, its observed price."""
    out = np.empty((known.now.shape[0], STORED), np.float16)
    out[:, :3] = known.flags(known.now)
    out[:, 3] = known.now_rel
    ok = np.isfinite(known.price_now) & np.isfinite(known.usual) & (known.usual > 0)
    seen = np.divide(known.price_now, known.usual, out=np.full(ok.shape, np.nan), where=ok)
    out[:, 4] = np.where(ok, np.clip(seen - 1.0, -1.0, 4.0), np.nan)
    return out


def _price(cells: np.ndarray) -> np.ndarray:
    """The observed price of stored cells ``[..., 5]``, else the planned one."""
    return np.where(np.isfinite(cells[..., 4]), cells[..., 4], cells[..., 3])


def train_columns(stored: np.ndarray, i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """:data:`PLAN_FEATURES` of training rows (series ``i``, target bucket ``j >= 1``) from ``stored`` [S, T, 5]."""
    cell = stored[i, j].astype(np.float32)
    prev = stored[i, np.maximum(j - 1, 0)].astype(np.float32)
    return [cell[:, 0], cell[:, 1], cell[:, 2], cell[:, 3], prev[:, 0], _price(prev)]


def forecast_columns(stored: np.ndarray, known: KnownInputs, rows: np.ndarray | None, t: int,
                     h: int) -> list[np.ndarray]:
    """:data:`PLAN_FEATURES` of target ``t + h`` (``t``: buckets learned) for series ``rows`` (all when None),
    from the plans known now; ``stored`` [S, T, 5] gives bucket ``t - 1``'s."""
    ahead = take(known.ahead, rows)
    flags = known.flags(ahead[:, h])
    price = known.price_rel(ahead[:, h], rows)
    if h == 0:
        last = (take(stored[:, t - 1], rows).astype(np.float32) if t >= 1
                else np.full((ahead.shape[0], STORED), np.nan, np.float32))
        promo_prev, price_prev = last[:, 0], _price(last)
    else:
        promo_prev = known.flags(ahead[:, h - 1])[:, 0]
        price_prev = known.price_rel(ahead[:, h - 1], rows)
    return [flags[:, 0], flags[:, 1], flags[:, 2], price, promo_prev, price_prev]
