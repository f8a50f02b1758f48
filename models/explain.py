"""Why a forecast says what it says: the median split into the contributions of the model's input groups.

The network's median, averaged over the ``H`` steps and in units per bucket, is split by integrated
gradients (Sundararajan, Taly & Yan, *Axiomatic Attribution for Deep Networks*, ICML 2017): along the
straight path from a *reference* input to the series' own, the gradient of the median with respect to each
input, averaged over the path and multiplied by how far that input moved, is its contribution. The
contributions add up to the median minus the median of the reference (completeness; ``residual`` is what
the Riemann sum of ``steps`` points leaves over). Summed per group of inputs (:data:`GROUPS`):

- **recent sales**: the units of the last ``lags`` buckets over the scale, returns, the volume level, the
  share of zero buckets, the recent and latest units, and the dormancy inputs;
- **clicks and carts**: views and add-to-carts and their levels;
- **price**: the price relative to the series' usual price, and a planned price;
- **promotion and other plans**: the promo share of recent orders, and the planned promotions, openings,
  closings and calendar events of the target buckets;
- **calendar**: the calendar of the target buckets (day of week, of month, of year, hour);
- **identity and age**: the hashed sku and store embeddings, the series' age and active share.

The reference is a typical series at this close without a calendar or plans: each input at its mean over
the series given (``population``), the calendar and plan inputs and the promo share at 0, the embeddings at 0
(an item the model knows nothing of). So "promotion and other plans: +12.4" reads: with its promotion and
plans, the median is 12.4 units a bucket above what the same model says with none. The calibration of the
published forecast (:mod:`tidecast.models.calibration`) adds a per-band offset after the network; it is
reported apart, as the published median minus the network's.

>>> import numpy as np, torch
>>> from tidecast.models.learner import LearnerConfig, OnlineLearner
>>> cfg = LearnerConfig(horizon=2, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16,
...                     replay_capacity=64, sku_buckets=64, store_buckets=8)
>>> learner = OnlineLearner(cfg)
>>> hist = np.random.default_rng(0).poisson(5.0, (3, 8, 7)).astype(np.float32)
>>> found = explain(learner, hist, np.zeros(3, np.int64), ["s"] * 3, ["a", "b", "c"], 7, 86_400, rows=[1])
>>> [e.series_row for e in found], sorted(found[0].contributions) == sorted(GROUPS)
([1], True)
>>> total = found[0].reference + sum(found[0].contributions.values()) + found[0].residual
>>> bool(abs(total - found[0].median) < 1e-4)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .features import N_AUX, N_CALENDAR, N_DORMANCY, N_STATIC, FeatureSpec
from .plan_features import plan_width
from .quantiles import median_index

if TYPE_CHECKING:
    from .learner import OnlineLearner

__all__ = ["GROUPS", "Explanation", "explain", "input_groups"]

SALES, CLICKS, PRICE, PLANS, CALENDAR, IDENTITY = GROUPS = (
    "recent sales", "clicks and carts", "price", "promotion and other plans", "calendar", "identity and age")
_STATICS = (SALES, CLICKS, CLICKS, SALES, IDENTITY, IDENTITY, SALES, SALES)  # features._static_features order
_AUX = (SALES, CLICKS, CLICKS, PRICE, PLANS)  # returns, views, add-to-carts, relative price, promo share
_PLAN_STEP = (PLANS, PLANS, PRICE, PRICE, PLANS, PLANS, PLANS, PLANS, PLANS, PLANS)  # plan_features order


@dataclass(frozen=True, slots=True)
class Explanation:
    """One series' median (units per bucket, averaged over the horizon) split by input group."""

    series_row: int
    median: float
    """The network's median, before the calibration."""
    reference: float
    """The median of the reference input (module docstring)."""
    contributions: dict[str, float]
    """Per group of :data:`GROUPS`, units per bucket; they add up to ``median - reference - residual``."""
    residual: float
    """What the path integral's Riemann sum left unattributed (small; it shrinks with more steps)."""


def input_groups(spec: FeatureSpec, plans: bool) -> list[str]:
    """The group of every input column, in the order the network reads them (:mod:`tidecast.models.features`,
    then :mod:`tidecast.models.plan_features` when the model takes plans).

    >>> groups = input_groups(FeatureSpec(horizon=2, lags=4, aux_lags=2, scale_window=4), plans=True)
    >>> len(groups), groups[:5].count(SALES), groups[-10:] == list(_PLAN_STEP)
    (54, 5, True)
    """
    groups = [SALES] * spec.lags
    for group in _AUX:
        groups += [group] * spec.aux_lags
    groups += list(_STATICS) + [CALENDAR] * N_CALENDAR + [SALES] * N_DORMANCY
    assert len(groups) == spec.lags + N_AUX * spec.aux_lags + N_STATIC + N_CALENDAR + N_DORMANCY
    if plans:
        groups += list(_PLAN_STEP) * (plan_width(spec.horizon) // len(_PLAN_STEP))
    return groups


def explain(learner: OnlineLearner, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str],
            skus: Sequence[str], t: int, bucket_seconds: int, plans: np.ndarray | None = None,
            rows: Sequence[int] | None = None, steps: int = 32) -> list[Explanation]:
    """Explain the network's median at close ``t`` for the series ``rows`` (default: all) of the panel given
    (its arguments are :meth:`~tidecast.models.learner.OnlineLearner.forecast`'s; the whole panel sets the
    reference); ``steps`` points on the path. Nothing is learned or remembered."""
    spec, cfg = learner.spec, learner.config
    x, sku_ids, store_ids, scale = learner.inputs(history, first_seen, stores, skus, t, bucket_seconds, plans)
    groups = input_groups(spec, cfg.plans)
    base = spec.lags + (N_AUX - 1) * spec.aux_lags
    promo = slice(base, base + spec.aux_lags)
    ref = np.broadcast_to(x.mean(axis=0, keepdims=True), x.shape).copy()
    ref[:, np.array([g == CALENDAR for g in groups])] = 0.0
    ref[:, promo] = 0.0
    ref[:, spec.n_inputs:] = 0.0  # no plan known
    chosen = np.arange(len(x)) if rows is None else np.asarray(list(rows), np.int64)
    index = {g: np.array([k for k, name in enumerate(groups) if name == g], np.int64) for g in GROUPS}
    chunk, out = max(1, cfg.forecast_chunk), []
    for lo in range(0, len(chosen), chunk):  # the path's activations of a chunk at a time
        part = chosen[lo:lo + chunk]
        out += _integrated_gradients(learner, x[part], ref[part], sku_ids[part], store_ids[part], scale[part],
                                     part, index, steps)
    return out


def _integrated_gradients(learner: OnlineLearner, x: np.ndarray, ref: np.ndarray, sku_ids: np.ndarray,
                          store_ids: np.ndarray, scale: np.ndarray, rows: np.ndarray, index: dict[str, np.ndarray],
                          steps: int) -> list[Explanation]:
    """:func:`explain` of the series ``rows``, whose inputs, reference inputs, ids and scales are given."""
    model, mid = learner.model, median_index(learner.config.quantiles)
    model.eval()
    out = []
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    with torch.no_grad():
        embedded = model.embed(torch.from_numpy(sku_ids), torch.from_numpy(store_ids))
    xs, refs = torch.from_numpy(x), torch.from_numpy(ref)
    units = torch.from_numpy(scale)
    dummy = torch.zeros((1, 2), dtype=torch.long)

    def median(inputs: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        q = model.forward_all(inputs, dummy.expand(len(inputs), -1), dummy.expand(len(inputs), -1),
                              embedded=emb)[0]
        return q[:, :, mid].mean(dim=1)

    with torch.no_grad():
        f_x = median(xs, embedded) * units
        f_ref = median(refs, torch.zeros_like(embedded)) * units
    grad_x, grad_e = torch.zeros_like(xs), torch.zeros_like(embedded)
    for alpha in alphas:
        path_x = (refs + alpha * (xs - refs)).requires_grad_(True)
        path_e = (alpha * embedded).requires_grad_(True)
        # gradients of the inputs only: the parameters' .grad stay untouched (nothing here is learned)
        dx, de = torch.autograd.grad((median(path_x, path_e) * units).sum(), (path_x, path_e))
        grad_x += dx
        grad_e += de
    attr_x = ((xs - refs) * grad_x / steps).numpy()
    attr_e = (embedded * grad_e / steps).sum(dim=1).numpy()
    for n, row in enumerate(rows):
        contributions = {g: float(attr_x[n, index[g]].sum()) if len(index[g]) else 0.0 for g in GROUPS}
        contributions[IDENTITY] += float(attr_e[n])
        med, reference = float(f_x[n]), float(f_ref[n])
        out.append(Explanation(int(row), med, reference, contributions,
                               med - reference - sum(contributions.values())))
    return out
