"""Model inputs from plans: what is known ahead about each target bucket, with a known-mask per field.

The forecaster hands the learner ``plans``, float32 ``[S, L + H, 8]`` (:mod:`tidecast.stream.plan_history`):
the columns of the history (``L``) and the ``H`` buckets after it, channels
:data:`tidecast.stream.plans.CHANNELS` (promo, price, open, event, each followed by its known flag). A sample
at array position ``end`` (its origin) reads the plans of its targets ``end+1 .. end+H``: for learning the
ones that were known when they were last forecast, for forecasting the ones known now. The planned price is
given relative to the series' usual price (revenue / units over the ``lags`` buckets up to the origin) minus 1,
clipped to [-1, 4]; unknown when the series has no price history. Unknown fields read 0 with their flag 0, so
"no plan" (0, 0) and "no promotion" (0, 1) differ.

A step whose plan says the store is closed (``open`` known and 0) is decided by the plan, not learned:
:func:`closed_steps` finds them, the network forecasts 0 there and the learner leaves their labels out.
Each step also reads whether the buckets either side of it are planned closed: the days beside a closing
sell differently (Rossmann's Saturdays and Mondays, beside the Sunday closing, and the eves of holidays).
With those two flags tidecast's Rossmann MASE went 0.285 -> 0.279 (WRMSSE 0.2795 -> 0.2711); the whole plans
of both neighbours (16 inputs) made it worse (0.300).

>>> import numpy as np
>>> hist = np.zeros((1, 4, 7), np.float32); hist[0, :, 0] = 2.0; hist[0, :, 2] = 8.0   # 2 units at 4.0
>>> plans = np.zeros((1, 6, 8), np.float32)
>>> plans[0, 4] = [1, 1, 3.0, 1, 1, 1, 0, 1]   # bucket t+1: promo at 3.0, open, no event
>>> plans[0, 5] = [0, 1, 0.0, 0, 0, 1, 0, 1]   # bucket t+2: no promo, closed
>>> x = plan_inputs(plans, hist, rows=None, ends=np.array([3]), horizon=2, lags=4)
>>> x.reshape(2, 10).tolist()   # per step: its 8 plan channels, then closed before it, closed after it
[[1.0, 1.0, -0.25, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]]
>>> closed_steps(x.reshape(1, 2, 10)).tolist()
[[False, True]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tidecast.stream.plans import CHANNELS, OPEN, OPEN_KNOWN, PRICE, PRICE_KNOWN
from tidecast.stream.windows import REVENUE, UNITS

__all__ = ["closed_steps", "plan_inputs", "plan_width"]


def plan_width(horizon: int) -> int:
    """Inputs the plans add per target step: :data:`~tidecast.stream.plans.CHANNELS`, then whether the
    buckets before and after it are planned closed."""
    return horizon * (len(CHANNELS) + 2)


def closed_steps(plans: Any) -> Any:
    """Bool ``[..., H]`` of plans ``[..., H, 8]`` (numpy or torch): the steps a plan says are closed (``open``
    known and 0). A closed store sells nothing (docs/events.md), so those steps are forecast as 0."""
    return (plans[..., OPEN_KNOWN] > 0) & (plans[..., OPEN] <= 0)


def plan_inputs(plans: np.ndarray | None, history: np.ndarray, rows: np.ndarray | None, ends: np.ndarray,
                horizon: int, lags: int) -> np.ndarray:
    """float32 ``[N, H * 8]``: the plans of targets ``ends+1 .. ends+H`` of each sample (``rows`` of
    ``history``, every row when None); no ``plans`` means nothing known."""
    ends = np.asarray(ends, np.int64)
    n = history.shape[0] if rows is None else len(rows)
    if plans is None or n == 0:
        return np.zeros((n, plan_width(horizon)), np.float32)
    which = np.arange(history.shape[0]) if rows is None else np.asarray(rows, np.int64)
    ends = np.broadcast_to(ends, (n,))
    width = plans.shape[1]
    pos = ends[:, None] + 1 + np.arange(horizon)
    inside = (pos >= 0) & (pos < width)
    out = np.where(inside[..., None], plans[which[:, None], np.clip(pos, 0, width - 1)], np.float32(0.0))
    out = np.array(out, np.float32)
    span = ends[:, None] - lags + 1 + np.arange(lags)
    ok = (span >= 0) & (span < history.shape[1])
    cells = history[which[:, None], np.clip(span, 0, history.shape[1] - 1)]
    units = np.where(ok, cells[..., UNITS], 0.0).sum(axis=1)
    revenue = np.where(ok, cells[..., REVENUE], 0.0).sum(axis=1)
    usual = np.divide(revenue, units, out=np.zeros_like(revenue), where=(units > 0) & (revenue > 0))
    known = (out[..., PRICE_KNOWN] > 0) & (usual[:, None] > 0)
    rel = np.divide(out[..., PRICE], usual[:, None], out=np.ones_like(out[..., PRICE]), where=known)
    out[..., PRICE] = np.where(known, np.clip(rel - 1.0, -1.0, 4.0), 0.0)
    out[..., PRICE_KNOWN] = known
    beside = [_closed_at(plans, which, pos + shift) for shift in (-1, 1)]
    return np.concatenate([out, *beside], axis=-1).reshape(n, -1)


def _closed_at(plans: np.ndarray, which: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``[N, H, 1]``: 1.0 where the bucket at array position ``pos`` of row ``which`` is planned closed."""
    width = plans.shape[1]
    inside = (pos >= 0) & (pos < width)
    cells = plans[which[:, None], np.clip(pos, 0, width - 1)]
    return (inside & closed_steps(cells))[..., None].astype(np.float32)
