"""River's per-series time-series models (Holt-Winters by default, or SNARIMAX) as a baseline.

One river model per series, so ``update`` and ``forecast`` are Python loops over series (the one baseline
that is not vectorised). Measured on 2 cores: Holt-Winters ``learn_one`` about 2 us and ``forecast(28)`` about
8 us per series, i.e. ~0.06 s per bucket and ~0.25 s per forecast for 30,490 series; SNARIMAX is 10 to 20
times slower. Replaying a long history (``fit``) costs ``t`` times the per-bucket cost.

Holt-Winters is additive (counts contain zeros). river 0.26's ``HoltWinters`` initialises the seasonal
components with the multiplicative formula ``y_i / level`` even when additive (and divides by zero when the
first season is all zeros), so the components are initialised here instead, with the additive formulas
(``level = mean of the first m values``, ``trend = 0``, ``season_i = y_i - level``), and river's
``learn_one`` / ``forecast`` do the rest. Before a series has m values its forecast is the mean of its values.

Holt-Winters takes no inputs (and river's SNARIMAX takes them per series, with one coefficient per series and
input, too slow and too few promotions per series to learn from), so given plans (``backtest --known``) a global
linear model learns what a plan adds (:class:`~.plan_effects.PlanEffects`: promo, event and relative price,
each with its known flag, scaled by the series' level) from the one-step residuals; the series models learn
the units less that effect, and a day planned closed as their own forecast (a closing neither drags the level
nor the season), and the forecast adds the effect of the plans known at the origin.

Example:
    >>> import numpy as np
    >>> b = RiverTS(horizon=2, season=2, alpha=0.5, beta=0.1, gamma=0.5)
    >>> b.fit(np.array([[1.0, 3.0, 1.0, 3.0], [np.nan, np.nan, np.nan, 4.0]])).point_forecast().tolist()
    [[1.0, 3.0], [4.0, 4.0]]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from river import time_series

from ..quantiles import DEFAULT_QUANTILES
from .base import StreamingBaseline, pad_rows
from .plan_effects import PlanEffects


class RiverTS(StreamingBaseline):
    """A river forecaster per series, created at the series' first finite value; NaN buckets are skipped.

    Args:
        horizon, quantiles: as every baseline.
        season: m, the seasonal period in buckets (< 2 means no seasonality).
        model: ``"holtwinters"`` (additive, trend and season) or ``"snarimax"``
            (``SNARIMAX(p, 0, 0, m, sp=1)`` with river's default standardised linear regression).
        alpha, beta, gamma: Holt-Winters smoothing of level, trend, season.
        p: SNARIMAX autoregressive order.
        **kw: those of :class:`StreamingBaseline`.
    """

    name = "river"

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        *,
        season: int = 7,
        model: Literal["holtwinters", "snarimax"] = "holtwinters",
        alpha: float = 0.1,
        beta: float = 0.01,
        gamma: float = 0.1,
        p: int = 7,
        **kw: Any,
    ) -> None:
        super().__init__(horizon, quantiles, **kw)
        if model not in ("holtwinters", "snarimax"):
            raise ValueError(f"model must be 'holtwinters' or 'snarimax', got {model!r}")
        self.season = int(season)
        self.model = model
        self.alpha, self.beta, self.gamma, self.p = float(alpha), float(beta), float(gamma), int(p)
        self._k = max(2, self.season) if model == "holtwinters" else 1  # values needed before a model exists
        self._models: list[Any] = []
        self._first = np.zeros((0, self._k))
        self._nfirst = np.zeros(0, dtype=np.int64)
        self._ready = np.zeros(0, dtype=bool)
        self.effects = PlanEffects()  # what plans add, once plans are given (see the module docstring)

    def _grow(self, n: int) -> None:
        self._models.extend([None] * (n - len(self._models)))
        self._first = pad_rows(self._first, n, 0.0)
        self._nfirst = pad_rows(self._nfirst, n, 0)
        self._ready = pad_rows(self._ready, n, False)

    def _new_model(self, first: np.ndarray) -> Any:
        if self.model == "snarimax":
            sp = 1 if self.season > 1 else 0
            arima = time_series.SNARIMAX(p=self.p, d=0, q=0, m=max(self.season, 1), sp=sp)
            arima.learn_one(float(first[0]))
            return arima
        seasonal = self.season >= 2
        m = time_series.HoltWinters(
            alpha=self.alpha,
            beta=self.beta,
            gamma=self.gamma if seasonal else None,
            seasonality=self.season if seasonal else 0,
        )
        level = float(first.mean())
        m.level.append(level)
        # river types trend and season as optional: HoltWinters builds them when beta != 0 and seasonality > 0
        m.trend.append(0.0)  # type: ignore[union-attr]
        if seasonal:
            m.season.extend((first - level).tolist())  # type: ignore[union-attr]
        m._initialized = True
        return m

    def _planned(self, y: np.ndarray) -> np.ndarray:
        """What the series models learn from bucket ``y`` given its plan: ``y`` less the plan's effect, and
        their own one-step forecast where it was planned closed; the effects learn from the residuals."""
        known, out = self.known, y.copy()
        rows = np.flatnonzero(self._ready[: y.size] & np.isfinite(y))
        if rows.size == 0:
            return out
        one = np.fromiter((self._models[i].forecast(1)[0] for i in rows.tolist()), float, rows.size)
        scale = self._effect_scale(rows)
        x = self.effects.features(known.now[rows], known.now_rel[rows])
        effect = scale * self.effects.predict(x)
        closed = known.closed_now()[rows]
        fit = ~closed & (scale > 0)
        self.effects.learn(x[fit], (y[rows][fit] - one[fit]) / scale[fit])
        out[rows] = np.where(closed, one, y[rows] - effect)
        return out

    def _effect_scale(self, idx: np.ndarray | None) -> np.ndarray:
        level = self._level if idx is None else self._level[idx]
        return np.where(np.isfinite(level), np.maximum(level, 1.0), 0.0)

    def _learn(self, y: np.ndarray) -> None:
        if self.known.given:
            y = self._planned(y)
        ok = np.isfinite(y)
        ready = self._ready
        models = self._models
        for i, v in zip(np.flatnonzero(ok & ready).tolist(), y[ok & ready].tolist(), strict=True):
            models[i].learn_one(v)
        fill = np.flatnonzero(ok & ~ready)
        if fill.size:
            self._first[fill, self._nfirst[fill]] = y[fill]
            self._nfirst[fill] += 1
            done = fill[self._nfirst[fill] >= self._k]
            for i in done.tolist():
                models[i] = self._new_model(self._first[i])
            self._ready[done] = True

    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        rows = np.arange(len(self._models)) if idx is None else idx
        out = np.zeros((rows.size, self.horizon))
        with np.errstate(invalid="ignore", divide="ignore"):
            early = self._first[rows].sum(axis=1) / self._nfirst[rows]
        out[:] = np.where(self._nfirst[rows] > 0, early, 0.0)[:, None]
        h = self.horizon
        for j, i in enumerate(rows.tolist()):
            m = self._models[i]
            if m is not None:
                out[j] = m.forecast(h)
        if self.known.given and self.effects.rows >= self.effects.min_rows:
            ahead = self.known.ahead[rows]
            x = self.effects.features(ahead, self.known.price_rel(ahead, rows))
            out += self._effect_scale(rows)[:, None] * self.effects.predict(x)
        return out
