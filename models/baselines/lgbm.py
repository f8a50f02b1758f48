"""Offline LightGBM (tweedie) on lag, rolling-mean and calendar features: the strong anchor baseline.

One global model for all series, refit from scratch every ``refit_every`` buckets on all data so far (an
expanding window; rows are subsampled to at most ``max_train_rows``, seeded). Multi-horizon forecasts are
*recursive*: one one-step model, each step's prediction fed back as lag 1 of the next step (one model and one
training set instead of H; the price is error feed-back over the horizon). Until the first fit, the
forecast is the moving average of the last ``windows[-1]`` values. Quantiles come from the model's own past
errors, like every baseline.

Features of a target bucket j of series i (all from values before j): ``y[j-l]`` for each lag l, the mean
of the finite values among the last w buckets for each window w, the phase ``j % season``, and, when
``start_epoch`` is given (epoch seconds of bucket 0's start; bucket j starts at
``start_epoch + j * bucket_seconds``), day of week and day of the month (buckets of a day or less), hour of
day (buckets under a day) and month. Missing lags are NaN (LightGBM routes them natively). Targets are clipped at 0.

Given plans (``update(y, plans=..., revenue=...)``, ``backtest --known``), every refit from then on adds the
plan of the target bucket and the promo and price of the bucket before it (:mod:`.lgbm_plans`); each label
is learned with the plan known one bucket before it, and a forecast step reads the plan known at its origin.
A bucket planned closed is forecast 0 and fed back as 0 to the next steps.

Cost: a refit is a batch job inside ``update`` (seconds to tens of seconds for a million rows on 2 threads);
a forecast is H ``predict`` calls over S rows.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.poisson(np.array([[1.0], [5.0]]) * (1 + (np.arange(60) % 7 == 5)), size=(2, 60)).astype(float)
    >>> b = LightGBMTweedie(horizon=7, season=7, refit_every=28, num_boost_round=20, num_threads=1).fit(y)
    >>> b.forecast().shape, bool(b.point_forecast()[1].mean() > b.point_forecast()[0].mean())
    ((2, 7, 3), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows
from .lgbm_plans import PLAN_FEATURES, STORED, forecast_columns, stored_column, train_columns

_DAY = 86_400


def default_lags(season: int) -> tuple[int, ...]:
    """Lags 1..7 plus one and two seasons (and 28 for a weekly season: 1..7, 14, 28).

    >>> default_lags(7), default_lags(24)
    ((1, 2, 3, 4, 5, 6, 7, 14, 28), (1, 2, 3, 4, 5, 6, 7, 24, 48))
    """
    extra = {season, 2 * season} | ({28} if season == 7 else set())
    return tuple(sorted(set(range(1, 8)) | {s for s in extra if s > 0}))


class LightGBMTweedie(StreamingBaseline):
    """Global LightGBM tweedie model, recursive multi-step, refit periodically (see the module docstring).

    Args:
        horizon, quantiles: as every baseline.
        season: m in buckets; gives the phase feature and the default lags.
        lags: lag set (default :func:`default_lags`).
        windows: rolling-mean windows in buckets.
        refit_every: refit when this many buckets have arrived since the last fit (first fit at that many).
        start_epoch, bucket_seconds: calendar of the buckets (epoch seconds); no calendar features if None.
        max_train_rows: subsample the training rows to this many (None = all).
        num_boost_round, params: LightGBM rounds and parameter overrides.
        num_threads, seed: LightGBM threads and the seed of LightGBM and of the row sampling.
        **kw: those of :class:`StreamingBaseline`.
    """

    name = "lightgbm"

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        *,
        season: int = 7,
        lags: tuple[int, ...] | None = None,
        windows: tuple[int, ...] = (7, 28),
        refit_every: int = 28,
        start_epoch: int | None = None,
        bucket_seconds: int = _DAY,
        max_train_rows: int | None = 1_000_000,
        num_boost_round: int = 100,
        params: dict[str, Any] | None = None,
        num_threads: int = 2,
        seed: int = 0,
        **kw: Any,
    ) -> None:
        super().__init__(horizon, quantiles, **kw)
        self.season = int(season)
        self.lags = tuple(sorted(set(lags))) if lags else default_lags(self.season)
        self.windows = tuple(int(w) for w in windows)
        if min(self.lags) < 1 or min(self.windows) < 1:
            raise ValueError("lags and windows must be >= 1")
        self.refit_every = int(refit_every)
        self.start_epoch = start_epoch
        self.bucket_seconds = int(bucket_seconds)
        self.max_train_rows = max_train_rows
        self.num_boost_round = int(num_boost_round)
        self.seed = int(seed)
        self.params: dict[str, Any] = {
            "objective": "tweedie",
            "tweedie_variance_power": 1.1,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_data_in_leaf": 50,
            "feature_fraction": 0.9,
            "lambda_l2": 0.1,
            "num_threads": int(num_threads),
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
            **(params or {}),
        }
        self._memory = max(max(self.lags), max(self.windows))  # buckets a forecast looks back
        self._hist = np.full((0, 64), np.nan, dtype=np.float32)  # [S, capacity]; columns < t are used
        self._booster: Any = None
        self._last_fit = 0
        self._stored: np.ndarray | None = None  # [S, capacity, 5] plans and prices per bucket, once plans come
        self._with_plans = False  # whether the booster was trained with PLAN_FEATURES

    # -------------------------------------------------------------- features
    @property
    def feature_names(self) -> list[str]:
        names = [f"lag_{lag}" for lag in self.lags] + [f"mean_{w}" for w in self.windows] + ["phase"]
        if self.start_epoch is not None:
            names += ["dow", "day_of_month"] if self.bucket_seconds <= _DAY else []
            names += ["hour"] if self.bucket_seconds < _DAY else []
            names += ["month"]
        return names + list(PLAN_FEATURES) * self._with_plans

    def _calendar(self, j: np.ndarray) -> list[np.ndarray]:
        """Calendar features of target buckets ``j`` (int array)."""
        cols = [(j % self.season).astype(np.float32)]
        if self.start_epoch is not None:
            epoch = self.start_epoch + j.astype(np.int64) * self.bucket_seconds
            if self.bucket_seconds <= _DAY:
                cols.append((((epoch // _DAY) + 3) % 7).astype(np.float32))  # 1970-01-01 was a Thursday
                days = epoch.astype("datetime64[s]").astype("datetime64[D]")
                cols.append((days - days.astype("datetime64[M]")).astype(np.float32) + 1)  # the pay cycle
            if self.bucket_seconds < _DAY:
                cols.append(((epoch % _DAY) // 3600).astype(np.float32))
            months = epoch.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
            cols.append(months.astype(np.float32))
        return cols

    def _train_set(self, seen: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (i, j), 1 <= j < seen, with y[i, j] and y[i, j-1] finite: features and clipped targets."""
        y = self._hist[:, :seen]
        cand = np.zeros(y.shape, dtype=bool)
        cand[:, 1:] = np.isfinite(y[:, 1:]) & np.isfinite(y[:, :-1])
        flat = np.flatnonzero(cand)
        if self.max_train_rows is not None and flat.size > self.max_train_rows:
            rng = np.random.default_rng(self.seed + seen)
            flat = np.sort(rng.choice(flat, self.max_train_rows, replace=False))
        i, j = np.divmod(flat, y.shape[1])
        cols = []
        for lag in self.lags:
            jl = j - lag
            cols.append(np.where(jl >= 0, y[i, np.maximum(jl, 0)], np.nan).astype(np.float32))
        finite = np.isfinite(y)
        csum = np.zeros((y.shape[0], y.shape[1] + 1), dtype=np.float32)
        ccnt = np.zeros_like(csum)
        np.cumsum(np.where(finite, y, 0.0), axis=1, out=csum[:, 1:])
        np.cumsum(finite, axis=1, out=ccnt[:, 1:])
        for w in self.windows:
            lo = np.maximum(j - w, 0)
            s = csum[i, j] - csum[i, lo]
            c = ccnt[i, j] - ccnt[i, lo]
            cols.append(np.where(c > 0, s / np.maximum(c, 1), np.nan).astype(np.float32))
        cols += self._calendar(j)
        if self._with_plans and self._stored is not None:
            cols += train_columns(self._stored, i, j)
        return np.column_stack(cols), np.maximum(y[i, j], 0.0)

    # ----------------------------------------------------------- subclass API
    def _grow(self, n: int) -> None:
        self._hist = pad_rows(self._hist, n, np.nan)
        if self._stored is not None:
            self._stored = pad_rows(self._stored, n, np.nan)

    def _learn(self, y: np.ndarray) -> None:
        if self.t >= self._hist.shape[1]:
            grown = np.full((self._hist.shape[0], 2 * self._hist.shape[1]), np.nan, dtype=np.float32)
            grown[:, : self._hist.shape[1]] = self._hist
            self._hist = grown
        self._hist[:, self.t] = y
        if self.known.given:
            self._store_plans()
        seen = self.t + 1
        if seen >= self.refit_every and (self._booster is None or seen - self._last_fit >= self.refit_every):
            self._fit(seen)

    def _store_plans(self) -> None:
        """Keep the plan and observed price of the bucket being learned (:func:`.lgbm_plans.stored_column`)."""
        shape = self._hist.shape
        if self._stored is None or self._stored.shape[:2] != shape:
            grown = np.full((*shape, STORED), np.nan, np.float16)
            if self._stored is not None:
                grown[: self._stored.shape[0], : self._stored.shape[1]] = self._stored
            self._stored = grown
        self._stored[:, self.t] = stored_column(self.known)

    def _fit(self, seen: int) -> None:
        import lightgbm as lgb

        self._with_plans = self._stored is not None
        x, target = self._train_set(seen)
        if target.size == 0:
            return
        data = lgb.Dataset(x, label=target, feature_name=self.feature_names, free_raw_data=True)
        self._booster = lgb.train(self.params, data, num_boost_round=self.num_boost_round)
        self._last_fit = seen

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        rows = slice(None) if idx is None else idx
        mem = self._memory
        buf = np.full((self._hist[rows].shape[0], mem + self.horizon), np.nan, dtype=np.float32)
        k = min(mem, self.t)
        buf[:, mem - k : mem] = self._hist[rows, self.t - k : self.t]
        if self._booster is None:
            w = self.windows[-1]
            recent = buf[:, mem - min(w, mem) : mem]
            ok = np.isfinite(recent)
            mean = np.where(ok, recent, 0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
            return np.repeat(mean[:, None].astype(float), self.horizon, axis=1)
        out = np.zeros((buf.shape[0], self.horizon))
        # threads cost ~ms per predict call; small batches (the residual sample) are faster on one
        threads = self.params["num_threads"] if buf.shape[0] >= 10_000 else 1
        for h in range(self.horizon):
            end = mem + h  # buf[:, end] is the target bucket t+h
            cols = [buf[:, end - lag] for lag in self.lags]
            for w in self.windows:
                win = buf[:, end - w : end]
                ok = np.isfinite(win)
                c = ok.sum(axis=1)
                cols.append(np.where(c > 0, np.where(ok, win, 0).sum(axis=1) / np.maximum(c, 1), np.nan))
            j = np.full(buf.shape[0], self.t + h, dtype=np.int64)
            cols += self._calendar(j)
            if self._with_plans and self._stored is not None:
                cols += forecast_columns(self._stored, self.known, idx, self.t, h)
            x = np.column_stack(cols).astype(np.float64)
            pred = np.maximum(self._booster.predict(x, num_threads=threads), 0.0)
            if self.known.given:  # planned closed: 0, and 0 is what the next steps see as their lag
                pred[self.known.closed_ahead(idx)[:, h]] = 0.0
            out[:, h] = pred
            buf[:, end] = pred
        return out
