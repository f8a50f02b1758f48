"""What a baseline knows ahead (``backtest --known``): the plans of the buckets it forecasts and learns, and prices.

``update(y, plans=P, revenue=r)`` hands a baseline the plans of the H buckets after ``y``'s, float32
``[S, H, 8]`` (:data:`tidecast.stream.plans.CHANNELS`: promo, price, open, event, each with a known flag), as
known at that close, and the bucket's revenue [S]. :class:`KnownInputs` keeps them for the baseline: ``ahead``,
the plans of the buckets the next forecast targets, and ``now``, the plan of the bucket being learned (the one
given one bucket before it, the last known before it happened: what the retailer knew, no later).

Every baseline forecasts 0, all quantiles, for a bucket planned closed (``open`` known and false); its errors
there do not enter its residual quantiles, nor its level. LightGBM and river also read the plans as inputs.
Planned prices are read relative to the series' usual price, an average of its observed prices (revenue /
units of its buckets with both, a running mean over the first 28, then an EWMA with rate 1/28), minus 1,
clipped to [-1, 4], against the usual price of the origin; unknown (NaN) without a price history. Until plans
are first given, nothing changes: no plan given means the baseline is exactly the classic one.

>>> import numpy as np
>>> k = KnownInputs(horizon=2)
>>> plans = np.zeros((1, 2, 8), np.float32)
>>> plans[0, 0] = [1, 1, 4.5, 1, 0, 1, 0, 1]   # next bucket: promo at 4.5, closed, no event
>>> k.begin(1, np.array([2.0]), np.array([10.0])); k.end(plans)
>>> k.closed_ahead(None).tolist(), k.flags(k.ahead)[0, 0].tolist(), k.price_rel(k.ahead)[0].round(3).tolist()
([[True, False]], [1.0, 0.0, 0.0], [-0.1, nan])
>>> k.begin(1, np.array([0.0]), np.array([0.0])); k.closed_now().tolist()
[True]
"""

from __future__ import annotations

import numpy as np

from tidecast.stream.plans import CHANNELS, EVENT, EVENT_KNOWN, OPEN, OPEN_KNOWN, PRICE, PRICE_KNOWN, PROMO, PROMO_KNOWN

from .base_rows import pad_rows, take

__all__ = ["KnownInputs"]

_VALUES = [PROMO, OPEN, EVENT]
_FLAGS = [PROMO_KNOWN, OPEN_KNOWN, EVENT_KNOWN]


class KnownInputs:
    """Plans ahead, the plan of the bucket being learned, and each series' usual price (see the module docstring).

    ``given`` stays False (and every array empty) until a plan array is first given.
    """

    def __init__(self, horizon: int, price_alpha: float = 1.0 / 28.0) -> None:
        self.horizon = int(horizon)
        self.price_alpha = float(price_alpha)
        self.given = False
        self.ahead = np.zeros((0, self.horizon, len(CHANNELS)), np.float32)
        self.now = np.zeros((0, len(CHANNELS)), np.float32)
        self.usual = np.zeros(0)  # usual price per series; NaN until it has one
        self.prices = np.zeros(0, dtype=np.int64)  # buckets with an observed price, per series
        self.price_now = np.zeros(0)  # observed price of the bucket being learned (NaN: none)
        self.now_rel = np.zeros(0)  # its planned price over the usual one before it, minus 1 (NaN: unknown)

    def begin(self, n: int, y: np.ndarray, revenue: np.ndarray | None) -> None:
        """Before learning a bucket of ``n`` series with units ``y``: its plan becomes :attr:`now`; its observed
        price (``revenue / y``) is kept in :attr:`price_now` and moves the usual price."""
        self.ahead = pad_rows(self.ahead, n, 0.0)
        self.now = self.ahead[:, 0].copy()
        self.usual, self.prices = pad_rows(self.usual, n, np.nan), pad_rows(self.prices, n, 0)
        self.now_rel = self.price_rel(self.now[:, None])[:, 0]  # against the usual price known before it
        rev = np.zeros(n) if revenue is None else pad_rows(np.asarray(revenue, float).reshape(-1), n, 0.0)
        ok = np.isfinite(y) & (y > 0) & np.isfinite(rev) & (rev > 0)
        price = np.divide(rev, y, out=np.full(n, np.nan), where=ok)
        self.price_now = price
        self.prices += ok
        rate = np.maximum(1.0 / np.maximum(self.prices, 1), self.price_alpha)
        usual = np.where(np.isfinite(self.usual), self.usual, 0.0)
        self.usual = np.where(ok, usual + rate * (np.where(ok, price, 0.0) - usual), self.usual)

    def end(self, plans: np.ndarray | None) -> None:
        """After learning: ``plans`` [S', H, 8] of the next H buckets (None: nothing known)."""
        n = self.ahead.shape[0]
        ahead = np.zeros((n, self.horizon, len(CHANNELS)), np.float32)
        if plans is not None:
            p = np.asarray(plans, np.float32)
            if p.ndim != 3 or p.shape[1:] != ahead.shape[1:] or p.shape[0] > n:
                raise ValueError(f"plans must be [S <= {n}, {self.horizon}, {len(CHANNELS)}], got {p.shape}")
            ahead[: p.shape[0]] = p
            self.given = True
        self.ahead = ahead

    def closed_now(self) -> np.ndarray:
        """bool [S]: the bucket being learned was planned closed."""
        return (self.now[:, OPEN_KNOWN] > 0) & (self.now[:, OPEN] == 0)

    def closed_ahead(self, idx: np.ndarray | None) -> np.ndarray:
        """bool [n, H]: which target buckets of series ``idx`` (all when None) are planned closed."""
        a = take(self.ahead, idx)
        return (a[..., OPEN_KNOWN] > 0) & (a[..., OPEN] == 0)

    @staticmethod
    def flags(plans: np.ndarray) -> np.ndarray:
        """float32 ``[..., 3]``: promo, open, event of ``plans`` [..., 8]; NaN where unknown."""
        return np.where(plans[..., _FLAGS] > 0, plans[..., _VALUES], np.float32(np.nan))

    def price_rel(self, plans: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """The planned price of ``plans`` [n, ...] (series ``idx``) over their usual price, minus 1, clipped to
        [-1, 4]; NaN where either is unknown."""
        usual = take(self.usual, idx).reshape((-1,) + (1,) * (plans.ndim - 2))
        ok = (plans[..., PRICE_KNOWN] > 0) & np.isfinite(usual) & (usual > 0)
        rel = np.divide(plans[..., PRICE], usual, out=np.full(ok.shape, np.nan), where=ok)
        return np.where(ok, np.clip(rel - 1.0, -1.0, 4.0), np.nan)
