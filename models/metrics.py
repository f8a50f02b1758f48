"""Prequential forecast metrics, M5 style: the same code scores tidecast and every baseline.

A forecast issued at origin ``o`` (the index of the first forecast bucket; the forecaster has seen
buckets ``0 .. o-1``) covers buckets ``o .. o+H-1`` with ``Q`` quantiles. Each of its points is scored when
the actual of its bucket arrives. Every metric is first computed per series over all of that series' scored
points (all origins, all horizon steps), then averaged over series (equal weights, or revenue weights for
WRMSSE and WSPL). The exact definitions are in ``docs/metrics.md``.

Pure numpy; no I/O.

Example:
    >>> import numpy as np
    >>> y = np.array([[1.0, 3.0, 2.0, 4.0, 2.0]])               # one series, five buckets
    >>> mae_scale, mse_scale = history_scales(y[:, :4])          # history up to origin 4
    >>> float(mae_scale[0]), float(mse_scale[0])                 # diffs 2, -1, 2
    (1.6666666666666667, 3.0)
    >>> sc = Scorer(horizon=1, quantiles=(0.1, 0.5, 0.9))
    >>> sc.issue(4, np.array([[[1.0, 2.0, 3.0]]]), mae_scale, mse_scale)
    >>> sc.observe(4, y[:, 4])
    1
    >>> r = sc.result()
    >>> r["mae"], r["coverage80"], r["scored"]
    (0.0, 1.0, 1)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .quantiles import check_quantiles, interval80_pair, median_index

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

# Per-(series, step) sums kept by the Scorer.
_SUMS: tuple[str, ...] = (
    "n",  # scored points
    "abs",  # sum |e|, e = median forecast - actual
    "sq",  # sum e^2
    "err",  # sum e
    "cov",  # points with lo <= y <= hi
    "ns",  # points with a valid scale
    "abs_s",  # sum |e| / s1
    "sq_s",  # sum e^2 / s2
    "err_s",  # sum e / s1
    "pin_s",  # sum (mean over quantiles of pinball) / s1
    "rev",  # sum units * price, points whose price is known
    "units_np",  # sum units, points whose price is unknown
)


def history_scales(y_hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """M5 scales of each series from its own history, counted from its first non-zero sale.

    For series ``i`` with first non-zero (and non-NaN) value at index ``f``, the one-step differences
    ``d_j = y_j - y_{j-1}`` for ``f < j < t`` (both values finite) give ``mae_scale = mean |d|`` and
    ``mse_scale = mean d^2``. A series with no non-zero value, or with no valid difference (fewer than two
    points of history), gets NaN for both. Vectorised over series.

    Args:
        y_hist: [S, t] units per series and bucket; NaN before a series starts (or where unknown).

    Returns:
        (mae_scale [S], mse_scale [S]) as float64.

    >>> s1, s2 = history_scales(np.array([[0.0, 0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 5.0]]))
    >>> s1.tolist(), s2.tolist()                                 # diffs -2, 1 for the first series
    ([1.5, nan], [2.5, nan])
    """
    y = np.asarray(y_hist, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"y_hist must be [S, t], got shape {y.shape}")
    n_series, t = y.shape
    if t < 2:
        nan = np.full(n_series, np.nan)
        return nan, nan.copy()
    sale = np.isfinite(y) & (y != 0)
    first = np.where(sale.any(axis=1), sale.argmax(axis=1), t)  # index of the first non-zero sale
    d = np.diff(y, axis=1)  # d[:, j-1] = y_j - y_{j-1}
    ok = np.isfinite(d) & (np.arange(1, t)[None, :] > first[:, None])
    d[~ok] = 0.0
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae = np.abs(d).sum(axis=1) / count
        mse = (d * d).sum(axis=1) / count
    return mae, mse


def bucket_column(y: np.ndarray, n_series: int) -> np.ndarray:
    """One bucket's values as a flat float array; series are only ever appended, so it has at least
    ``n_series`` entries (the ones beyond are new series).

    >>> bucket_column([[1, 2, 3]], 2).tolist()
    [1.0, 2.0, 3.0]
    """
    values = np.asarray(y, dtype=float).ravel()
    if values.size < n_series:
        raise ValueError(f"expected at least {n_series} values, got {values.size}")
    return values


class RunningScales:
    """Streaming form of :func:`history_scales`: O(S) per bucket, grows when new series appear.

    After ``update`` has seen buckets ``0 .. t-1``, ``scales()`` equals ``history_scales(y[:, :t])``.

    >>> rs = RunningScales()
    >>> for col in ([0.0, 1.0], [2.0, 1.0], [0.0, 1.0], [1.0, 1.0]):
    ...     rs.update(np.array(col))
    >>> [v.tolist() for v in rs.scales()]                        # second series: constant, so scale 0
    [[1.5, 0.0], [2.5, 0.0]]
    """

    def __init__(self, n_series: int = 0) -> None:
        self._last = np.full(n_series, np.nan)
        self._started = np.zeros(n_series, dtype=bool)
        self._abs = np.zeros(n_series)
        self._sq = np.zeros(n_series)
        self._n = np.zeros(n_series, dtype=np.int64)

    @property
    def n_series(self) -> int:
        return int(self._last.size)

    def _grow(self, n: int) -> None:
        k = n - self.n_series
        self._last = np.concatenate([self._last, np.full(k, np.nan)])
        self._started = np.concatenate([self._started, np.zeros(k, dtype=bool)])
        self._abs = np.concatenate([self._abs, np.zeros(k)])
        self._sq = np.concatenate([self._sq, np.zeros(k)])
        self._n = np.concatenate([self._n, np.zeros(k, dtype=np.int64)])

    def update(self, y: np.ndarray) -> None:
        """Add one bucket: ``y`` [S'], S' >= the number of series so far (new series are appended)."""
        y = bucket_column(y, self.n_series)
        if y.size > self.n_series:
            self._grow(y.size)
        d = y - self._last
        ok = self._started & np.isfinite(d)
        d = np.where(ok, d, 0.0)
        self._abs += np.abs(d)
        self._sq += d * d
        self._n += ok
        self._started |= np.isfinite(y) & (y != 0)
        self._last = y.copy()

    def scales(self) -> tuple[np.ndarray, np.ndarray]:
        """(mae_scale [S], mse_scale [S]); NaN where fewer than two points since the first sale."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = np.where(self._n > 0, self._abs / self._n, np.nan)
            mse = np.where(self._n > 0, self._sq / self._n, np.nan)
        return mae, mse


@dataclass
class _Pending:
    step: int  # 0-based horizon step
    idx: np.ndarray  # [n] series indices
    fq: np.ndarray  # [n, Q] forecast quantiles for this step
    s1: np.ndarray  # [n] MAE scale at the origin
    s2: np.ndarray  # [n] MSE scale at the origin
    mean: np.ndarray | None  # [n] mean forecasts for this step (None: the median point is used)


class Scorer:
    """Prequential accumulator of forecast errors; ``result()`` gives MAE, RMSE, MASE, RMSSE, WRMSSE, WSPL,
    80% coverage and bias, overall and per horizon step.

    Two ways in:

    * streaming: ``issue(origin, forecasts, s1, s2)`` at each bucket close, then
      ``observe(t, actuals, price)`` when bucket ``t`` closes; every pending point targeting ``t`` is scored.
    * batch: ``add(forecasts, actuals, s1, s2, price=...)`` when the actuals are already known (backtests).

    Both feed the same per-(series, step) sums, so the results are identical. Memory: 12 float64 per
    (series, step), plus the pending forecasts in streaming mode.

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
        self._acc = np.zeros((self.horizon, int(n_series), len(_SUMS)))  # sums per (step, series)
        self._price_sum = np.zeros(int(n_series))
        self._price_n = np.zeros(int(n_series))
        self._pending: dict[int, list[_Pending]] = defaultdict(list)

    # ------------------------------------------------------------------ input
    @property
    def n_series(self) -> int:
        return int(self._acc.shape[1])

    @property
    def n_pending(self) -> int:
        """Forecast points issued but not yet scored."""
        return sum(p.idx.size for lst in self._pending.values() for p in lst)

    def issue(
        self,
        origin: int,
        forecasts: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        series_idx: np.ndarray | None = None,
        means: np.ndarray | None = None,
    ) -> None:
        """Hold forecasts issued at ``origin`` until their actuals arrive.

        Args:
            origin: index of the first forecast bucket (step h targets bucket ``origin + h - 1``).
            forecasts: [n, H, Q] quantile forecasts, finite.
            mae_scale, mse_scale: [n] scales from each series' history before ``origin`` (``history_scales``).
            series_idx: [n] series indices (unique); default ``arange(n)``.
            means: [n, H] mean forecasts, scored by the squared-error metrics and bias; default: the
                median quantile serves as the mean too.
        """
        f, idx, s1, s2 = self._check(forecasts, mae_scale, mse_scale, series_idx)
        m = self._check_means(means, f)
        for h in range(self.horizon):
            mean = None if m is None else m[:, h].copy()
            self._pending[int(origin) + h].append(_Pending(h, idx, f[:, h, :].copy(), s1, s2, mean))

    def observe(self, t: int, actuals: np.ndarray, price: np.ndarray | None = None) -> int:
        """Score every pending point whose target bucket is ``t``; returns how many were scored.

        Args:
            t: the bucket that just closed.
            actuals: [S] units of bucket ``t`` by series index; NaN = unknown (the point is dropped).
            price: [S] price of bucket ``t``, NaN where unknown; None = unknown for all.
        """
        a = np.asarray(actuals, dtype=float).ravel()
        p = None if price is None else np.asarray(price, dtype=float).ravel()
        scored = 0
        for e in self._pending.pop(int(t), []):
            scored += self._score(e.step, e.idx, e.fq, a[e.idx], e.s1, e.s2, None if p is None else p[e.idx], e.mean)
        return scored

    def add(
        self,
        forecasts: np.ndarray,
        actuals: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        price: np.ndarray | None = None,
        series_idx: np.ndarray | None = None,
        means: np.ndarray | None = None,
    ) -> int:
        """Score forecasts of one origin whose actuals are known: ``forecasts`` [n, H, Q], ``actuals`` [n, H]
        (NaN = not scored), ``price`` [n, H] or None, ``means`` [n, H] or None (see :meth:`issue`). Returns
        the number of points scored."""
        f, idx, s1, s2 = self._check(forecasts, mae_scale, mse_scale, series_idx)
        m = self._check_means(means, f)
        a = np.asarray(actuals, dtype=float)
        if a.shape != f.shape[:2]:
            raise ValueError(f"actuals must be [n, H] = {f.shape[:2]}, got {a.shape}")
        p = None if price is None else np.broadcast_to(np.asarray(price, dtype=float), a.shape)
        return sum(
            self._score(h, idx, f[:, h, :], a[:, h], s1, s2, None if p is None else p[:, h],
                        None if m is None else m[:, h])
            for h in range(self.horizon)
        )

    def _check(
        self,
        forecasts: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        series_idx: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        f = np.asarray(forecasts, dtype=float)
        if f.ndim != 3 or f.shape[1:] != (self.horizon, len(self.quantiles)):
            raise ValueError(f"forecasts must be [n, {self.horizon}, {len(self.quantiles)}], got {f.shape}")
        if not np.all(np.isfinite(f)):
            raise ValueError("forecasts contain NaN or inf")
        n = f.shape[0]
        idx = np.arange(n) if series_idx is None else np.asarray(series_idx, dtype=np.int64).ravel()
        s1 = np.broadcast_to(np.asarray(mae_scale, dtype=float).ravel(), (n,)).copy()
        s2 = np.broadcast_to(np.asarray(mse_scale, dtype=float).ravel(), (n,)).copy()
        if idx.size != n:
            raise ValueError("series_idx must have one index per forecast row")
        if n and (idx.min() < 0 or np.unique(idx).size != n):
            raise ValueError("series_idx must be unique and non-negative")
        if n and idx.max() >= self.n_series:
            self._grow(int(idx.max()) + 1)
        return f, idx, s1, s2

    @staticmethod
    def _check_means(means: np.ndarray | None, f: np.ndarray) -> np.ndarray | None:
        if means is None:
            return None
        m = np.asarray(means, dtype=float)
        if m.shape != f.shape[:2]:
            raise ValueError(f"means must be [n, H] = {f.shape[:2]}, got {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError("means contain NaN or inf")
        return m

    def _grow(self, n: int) -> None:
        k = n - self.n_series
        self._acc = np.concatenate([self._acc, np.zeros((self.horizon, k, len(_SUMS)))], axis=1)
        self._price_sum = np.concatenate([self._price_sum, np.zeros(k)])
        self._price_n = np.concatenate([self._price_n, np.zeros(k)])

    def _score(
        self,
        h: int,
        idx: np.ndarray,
        fq: np.ndarray,
        y: np.ndarray,
        s1: np.ndarray,
        s2: np.ndarray,
        price: np.ndarray | None,
        mean: np.ndarray | None = None,
    ) -> int:
        keep = np.isfinite(y)
        if not keep.all():
            idx, fq, y, s1, s2 = idx[keep], fq[keep], y[keep], s1[keep], s2[keep]
            price = None if price is None else price[keep]
            mean = None if mean is None else mean[keep]
        if idx.size == 0:
            return 0
        e = fq[:, self._mid] - y  # the median's error: absolute-error metrics
        em = e if mean is None else mean - y  # the mean's error: squared-error metrics and bias
        diff = y[:, None] - fq  # [n, Q]
        pinball = np.maximum(self._q * diff, (self._q - 1.0) * diff).mean(axis=1)
        ok = np.isfinite(s1) & (s1 > 0) & np.isfinite(s2) & (s2 > 0)
        safe1 = np.where(ok, s1, 1.0)
        safe2 = np.where(ok, s2, 1.0)
        if self._pair is None:
            cov = np.zeros_like(y)
        else:
            lo, hi = self._pair
            cov = ((y >= fq[:, lo]) & (y <= fq[:, hi])).astype(float)
        if price is None:
            known = np.zeros(y.shape, dtype=bool)
            price = np.zeros_like(y)
        else:
            known = np.isfinite(price)
            price = np.where(known, price, 0.0)
        parts = {  # same order as _SUMS
            "n": np.ones_like(y),
            "abs": np.abs(e),
            "sq": em * em,
            "err": em,
            "cov": cov,
            "ns": ok.astype(float),
            "abs_s": np.where(ok, np.abs(e) / safe1, 0.0),
            "sq_s": np.where(ok, em * em / safe2, 0.0),
            "err_s": np.where(ok, em / safe1, 0.0),
            "pin_s": np.where(ok, pinball / safe1, 0.0),
            "rev": y * price,
            "units_np": np.where(known, 0.0, y),
        }
        self._acc[h][idx] += np.stack([parts[k] for k in _SUMS], axis=1)  # idx is unique
        self._price_sum += np.bincount(idx, weights=price, minlength=self.n_series)
        self._price_n += np.bincount(idx, weights=known.astype(float), minlength=self.n_series)
        return int(idx.size)

    # ----------------------------------------------------------------- output
    def result(self) -> dict:
        """Metrics overall and per horizon step (see ``docs/metrics.md``); NaN where undefined.

        Keys: mae, rmse, mase, rmsse, wrmsse, wspl, coverage80, bias, bias_scaled, scored (points),
        series (series with a scored point), scaled_series, excluded_zero_scale (series with scored points
        but no valid scale), excluded_points (points left out of the scaled metrics), coverage80_quantiles,
        per_horizon (one dict per step with the same metrics plus step, scored, series, scaled_series).
        """
        mean_price = self._mean_price()
        total_acc = self._acc.sum(axis=0)
        total = {k: total_acc[:, j] for j, k in enumerate(_SUMS)}
        out = self._metrics(total, mean_price)
        out["coverage80_quantiles"] = (
            None if self._pair is None else [self.quantiles[self._pair[0]], self.quantiles[self._pair[1]]]
        )
        out["per_horizon"] = [
            {"step": h + 1, **self._metrics({k: self._acc[h, :, j] for j, k in enumerate(_SUMS)}, mean_price)}
            for h in range(self.horizon)
        ]
        for row in out["per_horizon"]:
            row.pop("excluded_zero_scale")
            row.pop("excluded_points")
        return out

    def _mean_price(self) -> np.ndarray:
        """Per series mean known price; the overall mean for series without one; NaN if no price at all."""
        if self._price_n.sum() == 0:
            return np.full(self.n_series, np.nan)
        overall = self._price_sum.sum() / self._price_n.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._price_n > 0, self._price_sum / self._price_n, overall)

    def _metrics(self, s: dict[str, np.ndarray], mean_price: np.ndarray) -> dict:
        nan = float("nan")
        has = s["n"] > 0
        hs = s["ns"] > 0
        out: dict = {name: nan for name in METRIC_NAMES}
        if has.any():
            n = s["n"][has]
            out["mae"] = float(np.mean(s["abs"][has] / n))
            out["rmse"] = float(np.mean(np.sqrt(s["sq"][has] / n)))
            out["bias"] = float(np.mean(s["err"][has] / n))
            if self._pair is not None:
                out["coverage80"] = float(np.mean(s["cov"][has] / n))
        if hs.any():
            ns = s["ns"][hs]
            rmsse = np.sqrt(s["sq_s"][hs] / ns)
            spl = s["pin_s"][hs] / ns
            out["mase"] = float(np.mean(s["abs_s"][hs] / ns))
            out["rmsse"] = float(np.mean(rmsse))
            out["bias_scaled"] = float(np.mean(s["err_s"][hs] / ns))
            w = self._weights(s, mean_price, hs)
            out["wrmsse"] = float(np.sum(w * rmsse))
            out["wspl"] = float(np.sum(w * spl))
        out["scored"] = int(s["n"].sum())
        out["series"] = int(has.sum())
        out["scaled_series"] = int(hs.sum())
        out["excluded_zero_scale"] = int((has & ~hs).sum())
        out["excluded_points"] = int(s["n"].sum() - s["ns"].sum())
        return out

    @staticmethod
    def _weights(s: dict[str, np.ndarray], mean_price: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Revenue share among the series in ``mask``; equal weights without prices or revenue."""
        k = int(mask.sum())
        if np.all(np.isnan(mean_price)):
            return np.full(k, 1.0 / k)
        rev = s["rev"][mask] + s["units_np"][mask] * mean_price[mask]
        rev = np.where(np.isfinite(rev), np.maximum(rev, 0.0), 0.0)
        total = rev.sum()
        if total <= 0:
            return np.full(k, 1.0 / k)
        return rev / total
