"""Prequential forecast metrics as M5 computes them: per forecast origin, then the mean over origins.

A forecast issued at origin ``o`` (the forecaster has seen buckets ``0 .. o-1``) covers buckets
``o .. o+H-1`` with ``Q`` quantiles. Each point is scored when the actual of its bucket arrives; once all H
buckets of an origin have arrived, the origin is complete and every metric is computed for it: per series
over its H steps (RMSSE and SPL as defined by the M5 Competitor's Guide and Makridakis, Spiliotis &
Assimakopoulos, "M5 accuracy competition", IJF 38(4), 2022; MASE as Hyndman & Koehler, IJF 22(4), 2006),
then over the series scored at ``o`` (plain means, or the weights known at ``o`` for WRMSSE and WSPL). The
reported figure is the mean over complete origins; ``per_origin`` keeps every origin's value for the
comparison of models (:mod:`tidecast.models.bootstrap`). Definitions: ``docs/metrics.md``.

Pure numpy; no I/O.

Example (one series, H = 1, scales from the history before origin 4):
    >>> import numpy as np
    >>> y = np.array([[1.0, 3.0, 2.0, 4.0, 2.0]])
    >>> mae_scale, mse_scale = history_scales(y[:, :4])          # diffs 2, -1, 2
    >>> sc = Scorer(horizon=1, quantiles=(0.1, 0.5, 0.9))
    >>> sc.issue(4, np.array([[[1.0, 2.0, 3.0]]]), mae_scale, mse_scale)
    >>> sc.observe(4, y[:, 4])
    1
    >>> r = sc.result()
    >>> r["mae"], r["coverage80"], r["scored"], r["origins"]
    (0.0, 1.0, 1, 1)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .quantiles import check_quantiles, interval80_pair, median_index
from .scales import RunningScales, bucket_column, history_scales

__all__ = [
    "METRIC_NAMES",
    "RunningScales",
    "Scorer",
    "bucket_column",
    "history_scales",
]

METRIC_NAMES: tuple[str, ...] = (
    "mae",
    "rmse",
    "mase",
    "rmsse",
    "wrmsse",
    "wspl",
    "coverage80",
    "bias",
    "bias_scaled",
)
_M = {name: j for j, name in enumerate(METRIC_NAMES)}

# Per-(series, origin) sums over the origin's steps.
_PARTS: tuple[str, ...] = ("n", "abs", "sq", "err", "cov", "pin")
_COUNTS: tuple[str, ...] = ("pairs", "scaled_pairs", "excluded_zero_scale", "excluded_zero_weight")


@dataclass
class _Origin:
    """One issued origin until all its H steps are scored."""

    idx: np.ndarray  # [n] series indices
    s1: np.ndarray  # [n] MAE scale at the origin
    s2: np.ndarray  # [n] MSE scale at the origin
    w: np.ndarray  # [n] weights known at the origin, >= 0 (not normalised)
    sums: np.ndarray  # [n, len(_PARTS)]
    steps: np.ndarray  # [H, len(METRIC_NAMES)] each step's metrics over the series, NaN where undefined
    done: int = 0  # steps scored


@dataclass
class _Pending:
    origin: int
    step: int  # 0-based horizon step
    fq: np.ndarray  # [n, Q] forecast quantiles for this step
    mean: np.ndarray | None  # [n] mean forecasts for this step (None: the median point is used)


@dataclass
class _Totals:
    origins: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)  # one [len(METRIC_NAMES)] per complete origin
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    scored: int = 0


class Scorer:
    """Prequential accumulator: per complete origin MAE, RMSE, MASE, RMSSE, WRMSSE, WSPL, 80% coverage and
    bias; ``result()`` gives their means over origins, overall and per horizon step.

    Two ways in:

    * streaming: ``issue(origin, forecasts, s1, s2, weights=...)`` at each bucket close, then
      ``observe(t, actuals)`` when bucket ``t`` closes; every pending point targeting ``t`` is scored.
    * batch: ``add(forecasts, actuals, s1, s2, weights=...)`` for one origin whose actuals are known.

    Both score the same way, so the results are identical. Memory: 6 float64 per (series, open origin), at
    most H origins open, plus the pending forecasts and 9 floats per complete origin.

    Args:
        horizon: H, the number of steps of every forecast.
        quantiles: the Q forecast quantiles, strictly increasing in (0, 1).
        n_series: initial number of series; grows when a larger series index is seen.

    Example:
        >>> sc = Scorer(horizon=2, quantiles=(0.1, 0.5, 0.9))
        >>> f = np.array([[[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]]])          # one series, 2 steps, 3 quantiles
        >>> sc.add(f, np.array([[3.0, 2.0]]), np.array([1.0]), np.array([1.0]))
        2
        >>> r = sc.result()
        >>> r["mae"], r["bias"], r["coverage80"], [p["mae"] for p in r["per_horizon"]]
        (1.0, -1.0, 0.5, [2.0, 0.0])
    """

    def __init__(self, horizon: int, quantiles: tuple[float, ...] | list[float], n_series: int = 0) -> None:
        if horizon < 1:
            raise ValueError("horizon must be >= 1")
        self.horizon = int(horizon)
        self.quantiles = check_quantiles(quantiles)
        self._q = np.asarray(self.quantiles, dtype=float)
        self._mid = median_index(self.quantiles)
        self._pair = interval80_pair(self.quantiles)
        self._seen = np.zeros(int(n_series), dtype=bool)  # series with a scored point in a complete origin
        self._open: dict[int, _Origin] = {}
        self._pending: dict[int, list[_Pending]] = defaultdict(list)
        self._totals = _Totals()
        self._step_sum = np.zeros((self.horizon, len(METRIC_NAMES)))
        self._step_n = np.zeros((self.horizon, len(METRIC_NAMES)), dtype=np.int64)

    # ------------------------------------------------------------------ input
    @property
    def n_series(self) -> int:
        return int(self._seen.size)

    @property
    def n_pending(self) -> int:
        """Forecast points issued but not yet scored."""
        return sum(p.fq.shape[0] for lst in self._pending.values() for p in lst)

    def issue(
        self,
        origin: int,
        forecasts: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        series_idx: np.ndarray | None = None,
        means: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        """Hold forecasts issued at ``origin`` until their actuals arrive.

        Args:
            origin: index of the first forecast bucket (step h targets bucket ``origin + h - 1``); each origin
                is issued once.
            forecasts: [n, H, Q] quantile forecasts, finite.
            mae_scale, mse_scale: [n] scales from each series' history before ``origin`` (``history_scales``).
            series_idx: [n] series indices (unique); default ``arange(n)``.
            means: [n, H] mean forecasts, scored by the squared-error metrics and bias; default: the
                median quantile serves as the mean too.
            weights: [n] WRMSSE/WSPL weights known at ``origin`` (M5: dollar sales of the 28 buckets before
                it, :class:`~tidecast.models.weights.RunningSales`), >= 0; default: equal weights.
        """
        _, f, m = self._open_origin(int(origin), forecasts, mae_scale, mse_scale, series_idx, means, weights)
        for h in range(self.horizon):
            mean = None if m is None else m[:, h].copy()
            self._pending[int(origin) + h].append(_Pending(int(origin), h, f[:, h, :].copy(), mean))

    def observe(self, t: int, actuals: np.ndarray) -> int:
        """Score every pending point whose target bucket is ``t``; returns how many were scored.

        Args:
            t: the bucket that just closed.
            actuals: [S] units of bucket ``t`` by series index; NaN = unknown (the point is dropped).
        """
        a = np.asarray(actuals, dtype=float).ravel()
        scored = 0
        for e in self._pending.pop(int(t), []):
            org = self._open[e.origin]
            scored += self._score(e.origin, org, e.step, e.fq, a[org.idx], e.mean)
        return scored

    def add(
        self,
        forecasts: np.ndarray,
        actuals: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        series_idx: np.ndarray | None = None,
        means: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        origin: int | None = None,
    ) -> int:
        """Score one origin whose actuals are known: ``forecasts`` [n, H, Q], ``actuals`` [n, H] (NaN = not
        scored), the rest as :meth:`issue`; ``origin`` defaults to one past the last origin seen. Returns the
        number of points scored."""
        if origin is None:
            known = [*self._open, *self._totals.origins]
            origin = max(known) + 1 if known else 0
        org, f, m = self._open_origin(int(origin), forecasts, mae_scale, mse_scale, series_idx, means, weights)
        a = np.asarray(actuals, dtype=float)
        if a.shape != f.shape[:2]:
            del self._open[int(origin)]
            raise ValueError(f"actuals must be [n, H] = {f.shape[:2]}, got {a.shape}")
        return sum(
            self._score(int(origin), org, h, f[:, h, :], a[:, h], None if m is None else m[:, h])
            for h in range(self.horizon)
        )

    def _open_origin(
        self,
        origin: int,
        forecasts: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        series_idx: np.ndarray | None,
        means: np.ndarray | None,
        weights: np.ndarray | None,
    ) -> tuple[_Origin, np.ndarray, np.ndarray | None]:
        if origin in self._open or origin in self._totals.origins[-self.horizon - 1:]:
            raise ValueError(f"origin {origin} was already issued")
        f = np.asarray(forecasts, dtype=float)
        if f.ndim != 3 or f.shape[1:] != (self.horizon, len(self.quantiles)):
            raise ValueError(f"forecasts must be [n, {self.horizon}, {len(self.quantiles)}], got {f.shape}")
        if not np.all(np.isfinite(f)):
            raise ValueError("forecasts contain NaN or inf")
        n = f.shape[0]
        idx = np.arange(n) if series_idx is None else np.asarray(series_idx, dtype=np.int64).ravel()
        if idx.size != n:
            raise ValueError("series_idx must have one index per forecast row")
        if n and (idx.min() < 0 or np.unique(idx).size != n):
            raise ValueError("series_idx must be unique and non-negative")
        if n and idx.max() >= self.n_series:
            self._seen = np.concatenate([self._seen, np.zeros(int(idx.max()) + 1 - self.n_series, dtype=bool)])
        s1 = np.broadcast_to(np.asarray(mae_scale, dtype=float).ravel(), (n,)).copy()
        s2 = np.broadcast_to(np.asarray(mse_scale, dtype=float).ravel(), (n,)).copy()
        w = np.ones(n) if weights is None else np.broadcast_to(np.asarray(weights, dtype=float).ravel(), (n,))
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and >= 0")
        m = None if means is None else np.asarray(means, dtype=float)
        if m is not None and m.shape != f.shape[:2]:
            raise ValueError(f"means must be [n, H] = {f.shape[:2]}, got {m.shape}")
        if m is not None and not np.all(np.isfinite(m)):
            raise ValueError("means contain NaN or inf")
        org = _Origin(idx, s1, s2, w.copy(), np.zeros((n, len(_PARTS))),
                      np.full((self.horizon, len(METRIC_NAMES)), np.nan))
        self._open[origin] = org
        return org, f, m

    def _score(
        self, origin: int, org: _Origin, h: int, fq: np.ndarray, y: np.ndarray, mean: np.ndarray | None
    ) -> int:
        """Score step ``h`` of ``origin`` (all of its rows; NaN actuals are dropped); complete it after H."""
        keep = np.isfinite(y)
        y0 = np.where(keep, y, 0.0)
        e = fq[:, self._mid] - y0  # the median's error: absolute-error metrics
        em = e if mean is None else mean - y0  # the mean's error: squared-error metrics and bias
        diff = y0[:, None] - fq  # [n, Q]
        pinball = np.maximum(self._q * diff, (self._q - 1.0) * diff).mean(axis=1)
        if self._pair is None:
            cov = np.zeros_like(y0)
        else:
            lo, hi = self._pair
            cov = ((y0 >= fq[:, lo]) & (y0 <= fq[:, hi])).astype(float)
        parts = np.stack([np.ones_like(y0), np.abs(e), em * em, em, cov, pinball], axis=1)  # order of _PARTS
        parts[~keep] = 0.0
        org.sums += parts
        org.steps[h] = self._aggregate(parts, org)[0]
        org.done += 1
        if org.done == self.horizon:
            self._complete(origin, org)
        return int(keep.sum())

    def _complete(self, origin: int, org: _Origin) -> None:
        """All H steps scored: the origin's metrics join the totals (an origin without any point is dropped)."""
        del self._open[origin]
        values, counts = self._aggregate(org.sums, org)
        scored = org.sums[:, 0]
        if not scored.any():
            return
        tot = self._totals
        tot.origins.append(origin)
        tot.values.append(values)
        tot.scored += int(scored.sum())
        for k, v in counts.items():
            tot.counts[k] += v
        self._seen[org.idx[scored > 0]] = True
        ok = np.isfinite(org.steps)
        self._step_sum += np.where(ok, org.steps, 0.0)
        self._step_n += ok

    def _aggregate(self, sums: np.ndarray, org: _Origin) -> tuple[np.ndarray, dict[str, int]]:
        """The metrics over the series of one origin (or one step of it) from per-series ``sums`` [n, 6]."""
        out = np.full(len(METRIC_NAMES), np.nan)
        n, s_abs, s_sq, s_err, s_cov, s_pin = sums.T
        has = n > 0
        ok = has & np.isfinite(org.s1) & (org.s1 > 0) & np.isfinite(org.s2) & (org.s2 > 0)
        weighted = ok & (org.w > 0)
        counts = {"pairs": int(has.sum()), "scaled_pairs": int(ok.sum()),
                  "excluded_zero_scale": int((has & ~ok).sum()), "excluded_zero_weight": int((ok & ~weighted).sum())}
        if has.any():
            k = n[has]
            out[_M["mae"]] = np.mean(s_abs[has] / k)
            out[_M["rmse"]] = np.mean(np.sqrt(s_sq[has] / k))
            out[_M["bias"]] = np.mean(s_err[has] / k)
            if self._pair is not None:
                out[_M["coverage80"]] = np.mean(s_cov[has] / k)
        if ok.any():
            k, s1, s2 = n[ok], org.s1[ok], org.s2[ok]
            rmsse = np.sqrt(s_sq[ok] / k / s2)
            spl = s_pin[ok] / k / s1
            out[_M["mase"]] = np.mean(s_abs[ok] / k / s1)
            out[_M["rmsse"]] = np.mean(rmsse)
            out[_M["bias_scaled"]] = np.mean(s_err[ok] / k / s1)
            if weighted.any():
                w = np.where(weighted[ok], org.w[ok], 0.0)
                w = w / w.sum()
                out[_M["wrmsse"]] = np.sum(w * rmsse)
                out[_M["wspl"]] = np.sum(w * spl)
        return out, counts

    # ----------------------------------------------------------------- output
    def result(self) -> dict:
        """Means over complete origins (see ``docs/metrics.md``); NaN where undefined.

        Keys: the :data:`METRIC_NAMES`; origins (complete origins with a scored point), scored (their points),
        series (series with a scored point), pairs ((series, origin) pairs scored), scaled_pairs (pairs with a
        valid scale), excluded_zero_scale (pairs without one), excluded_zero_weight (pairs with a valid scale
        but zero weight: out of WRMSSE and WSPL), coverage80_quantiles, per_horizon (one dict per step: the
        metrics of that step alone, averaged over origins, plus step and origins), per_origin (``origin``: the
        complete origins in order, and per metric the list of that origin's values).
        """
        tot = self._totals
        values = np.array(tot.values).reshape(-1, len(METRIC_NAMES))
        out: dict = {}
        for j, name in enumerate(METRIC_NAMES):
            col = values[:, j]
            col = col[np.isfinite(col)]
            out[name] = float(col.mean()) if col.size else float("nan")
        out["origins"] = len(tot.origins)
        out["scored"] = tot.scored
        out["series"] = int(self._seen.sum())
        out.update(tot.counts)
        out["coverage80_quantiles"] = (
            None if self._pair is None else [self.quantiles[self._pair[0]], self.quantiles[self._pair[1]]]
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            steps = np.where(self._step_n > 0, self._step_sum / np.maximum(self._step_n, 1), np.nan)
        out["per_horizon"] = [
            {"step": h + 1, **{name: float(steps[h, j]) for j, name in enumerate(METRIC_NAMES)},
             "origins": int(self._step_n[h, _M["mae"]])}
            for h in range(self.horizon)
        ]
        out["per_origin"] = {"origin": list(tot.origins),
                             **{name: values[:, j].tolist() for j, name in enumerate(METRIC_NAMES)}}
        return out
