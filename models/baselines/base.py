"""The baseline protocol and the shared streaming machinery (series growth, level, residual quantiles).

A baseline learns online, one bucket at a time, for all series at once: ``update(y)`` with ``y`` [S]
(NaN before a series starts), O(S) numpy work per bucket. ``forecast()`` then returns [S, H, Q] quantiles
for the next H buckets: non-negative, non-decreasing along Q, finite. ``fit(history)`` replays a [S, t]
array through ``update``. The point forecast of every baseline is turned into quantiles with its own past
errors (:mod:`.residuals`).

Example:
    >>> import numpy as np
    >>> from tidecast.models.baselines import make_baseline
    >>> b = make_baseline("naive", season=7, quantiles=(0.1, 0.5, 0.9), horizon=2)
    >>> b.fit(np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 5.0]])).point_forecast().tolist()
    [[3.0, 3.0], [5.0, 5.0]]
    >>> b.forecast().shape
    (2, 2, 3)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

import numpy as np

from ..metrics import bucket_column
from ..quantiles import DEFAULT_QUANTILES, check_quantiles
from .base_rows import pad_rows, take
from .known import KnownInputs
from .residuals import ResidualQuantiles, Scale

__all__ = ["DEFAULT_QUANTILES", "Baseline", "StreamingBaseline", "pad_rows", "take"]


@runtime_checkable
class Baseline(Protocol):
    """What the backtest and the live loop need from a baseline."""

    name: str
    horizon: int
    quantiles: tuple[float, ...]

    @property
    def n_series(self) -> int: ...

    @property
    def t(self) -> int:
        """Buckets seen so far: the next forecast's origin."""
        ...

    def update(self, y: np.ndarray, plans: np.ndarray | None = None, revenue: np.ndarray | None = None) -> None:
        """Learn one bucket: ``y`` [S'] units per series (S' >= n_series; NaN = series not started yet);
        ``plans`` [S', H, 8] of the next H buckets and ``revenue`` [S'] when known (see :mod:`.known`)."""
        ...

    def point_forecast(self) -> np.ndarray:
        """[S, H] point forecasts for buckets ``t .. t+H-1`` (finite; 0 for series not started)."""
        ...

    def forecast(self) -> np.ndarray:
        """[S, H, Q] quantile forecasts: finite, >= 0, non-decreasing along Q."""
        ...

    def fit(self, history: np.ndarray) -> Baseline:
        """Replay ``history`` [S, t] bucket by bucket through ``update``; returns self."""
        ...


class StreamingBaseline(ABC):
    """Base class: subclasses give ``_grow``, ``_learn`` and ``_point``; this class adds the rest.

    Per bucket, ``update`` (1) scores the pending point forecasts of the tracked sample against the new
    actuals, (2) calls ``_learn``, (3) updates each series' level (an EWMA of its units, ``level_alpha``,
    a plain running mean over its first ``1/level_alpha`` buckets), (4) stores the sample's point forecasts
    for the next origin.

    Args:
        horizon: H steps.
        quantiles: Q levels, strictly increasing in (0, 1).
        scale: how errors are scaled per series before pooling (see ``residuals.SCALES``).
        level_alpha: smoothing of the series level used by ``scale``.
        residual_window, residual_series, residual_min_count: see ``ResidualQuantiles``.
    """

    name: str = "base"

    def __init__(
        self,
        horizon: int,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        *,
        scale: Scale = "sqrt",
        level_alpha: float = 1.0 / 28.0,
        residual_window: int = 56,
        residual_series: int = 512,
        residual_min_count: int = 30,
    ) -> None:
        if horizon < 1:
            raise ValueError("horizon must be >= 1")
        q = check_quantiles(quantiles)
        if scale not in ("none", "level", "sqrt"):
            raise ValueError(f"scale must be 'none', 'level' or 'sqrt', got {scale!r}")
        self.horizon = int(horizon)
        self.quantiles = q
        self.scale = scale
        self.level_alpha = float(level_alpha)
        self._t = 0
        self._level = np.full(0, np.nan)
        self._nobs = np.zeros(0, dtype=np.int64)
        self._res = ResidualQuantiles(
            self.horizon, q, window=residual_window, max_series=residual_series, min_count=residual_min_count
        )
        self.known = KnownInputs(self.horizon)

    # ----------------------------------------------------------- subclass API
    @abstractmethod
    def _grow(self, n: int) -> None:
        """Extend the per-series state to ``n`` series (new series have seen nothing)."""

    @abstractmethod
    def _learn(self, y: np.ndarray) -> None:
        """Update the state with bucket ``y`` [S] (NaN = series not started / unknown)."""

    @abstractmethod
    def _point(self, idx: np.ndarray | None) -> np.ndarray:
        """Point forecasts [n, H] for series ``idx`` (all when None) from the current state."""

    # ------------------------------------------------------------- public API
    @property
    def n_series(self) -> int:
        return int(self._level.size)

    @property
    def t(self) -> int:
        return self._t

    def update(self, y: np.ndarray, plans: np.ndarray | None = None, revenue: np.ndarray | None = None) -> None:
        """Learn bucket ``t``: ``y`` [S'] (S' >= n_series; extra entries are new series; NaN = unknown).

        ``plans`` [S', H, 8]: the plans of buckets ``t+1 .. t+H`` known now, ``revenue`` [S'] bucket ``t``'s
        (:mod:`.known`). Once plans were given, a bucket planned closed is forecast 0 and its error and units
        are left out of the residual quantiles and the level; before, both are ignored."""
        y = bucket_column(y, self.n_series)
        if y.size > self.n_series:
            self._grow(y.size)
            self._level = pad_rows(self._level, y.size, np.nan)
            self._nobs = pad_rows(self._nobs, y.size, 0)
        known = self.known
        if known.given or plans is not None:
            known.begin(y.size, y, revenue)
        idx = self._res.sample(y.size)
        opened = np.where(known.closed_now(), np.nan, y) if known.given else y
        self._res.score(self._t, opened[idx])
        self._learn(y)
        self._update_level(opened)
        self._t += 1
        if known.given or plans is not None:
            known.end(plans)
        self._res.remember(self._t, self._clean(self._point(idx), idx), self._scale(idx))

    def fit(self, history: np.ndarray) -> StreamingBaseline:
        """Replay ``history`` [S, t] through ``update``, one column per bucket; returns self."""
        h = np.asarray(history, dtype=float)
        if h.ndim != 2:
            raise ValueError(f"history must be [S, t], got shape {h.shape}")
        for j in range(h.shape[1]):
            self.update(h[:, j])
        return self

    def point_forecast(self, rows: np.ndarray | None = None) -> np.ndarray:
        """[S, H] point forecasts for buckets ``t .. t+H-1``; 0 for series without a finite value yet.

        ``rows`` (int array of series indices < ``n_series``) limits them to those series, in that order.
        """
        return self._clean(self._point(rows), rows)

    def forecast(self, rows: np.ndarray | None = None) -> np.ndarray:
        """[S, H, Q]: ``max(0, point + scale_i * R[h, q])`` with R the residual quantiles; finite, >= 0,
        non-decreasing along Q. ``rows`` as in :meth:`point_forecast`."""
        point = self.point_forecast(rows)
        # offsets are non-decreasing along q and scales >= 0, so each row is non-decreasing (IEEE rounding
        # is monotone) and stays so after the clip at 0: no sort needed.
        offsets = np.maximum.accumulate(self._res.offsets(), axis=1)
        out = np.multiply(self._scale(rows)[:, None, None], offsets[None, :, :])
        out += point[:, :, None]
        np.maximum(out, 0.0, out=out)
        if self.known.given:  # planned closed: nothing sold, at every quantile
            out[self.known.closed_ahead(rows)] = 0.0
        return out

    # ---------------------------------------------------------------- helpers
    def _update_level(self, y: np.ndarray) -> None:
        ok = np.isfinite(y)
        self._nobs += ok
        rate = np.maximum(1.0 / np.maximum(self._nobs, 1), self.level_alpha)
        lvl = np.where(np.isfinite(self._level), self._level, 0.0)
        self._level = np.where(ok, lvl + rate * (np.where(ok, y, 0.0) - lvl), self._level)

    def _scale(self, idx: np.ndarray | None) -> np.ndarray:
        """Per-series error scale: 1, the level, or its square root; 0 for series not started."""
        level = take(self._level, idx)
        lvl = np.where(np.isfinite(level), np.maximum(level, 0.0), 0.0)
        if self.scale == "none":
            return np.where(take(self._nobs, idx) > 0, 1.0, 0.0)
        return lvl if self.scale == "level" else np.sqrt(lvl)

    def _clean(self, p: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
        """Point forecasts made finite, and 0 for series with no finite value yet or buckets planned closed."""
        seen = take(self._nobs, idx)[:, None] > 0
        ok = seen & np.isfinite(p)
        if self.known.given:
            ok &= ~self.known.closed_ahead(idx)
        return np.where(ok, p, 0.0)
