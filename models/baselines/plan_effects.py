"""The effect of known plans on a series, for a time-series model that cannot take inputs (river's Holt-Winters).

A global linear model, learned online, of what the plan of a bucket adds to a series: ``y = f + s * x.w``,
with ``f`` the series model's one-step forecast, ``s`` the series' level (so a promotion lifts a large store
more than a small one) and ``x`` the bucket's plan as :data:`FEATURES` (each value next to its known flag, so
"no plan" is not "no promotion"; an unknown price reads 0). Ridge regression with forgetting: at each bucket
``A = d A + X'X``, ``b = d b + X'r`` over the series' scaled one-step residuals ``r`` (clipped to [-5, 5]),
``w = (A + ridge I)^-1 b`` once ``min_rows`` rows were seen. O(S d^2) numpy work per bucket, d = 6.

>>> import numpy as np
>>> e = PlanEffects(ridge=1e-6, min_rows=1)
>>> plans = np.zeros((4, 8), np.float32); plans[:, 1] = 1; plans[:2, 0] = 1   # known: two promos, two not
>>> x = e.features(plans, np.full(4, np.nan))
>>> e.learn(x, np.array([0.5, 0.5, 0.0, 0.0]))
>>> e.predict(x).round(3).tolist()
[0.5, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from tidecast.stream.plans import EVENT, EVENT_KNOWN, PROMO, PROMO_KNOWN

__all__ = ["FEATURES", "PlanEffects"]

FEATURES: tuple[str, ...] = ("promo", "promo_known", "event", "event_known", "price", "price_known")


class PlanEffects:
    """Online ridge regression of scaled residuals on plans (see the module docstring)."""

    def __init__(self, decay: float = 1.0 - 1.0 / 182.0, ridge: float = 1.0, min_rows: int = 200) -> None:
        self.decay, self.ridge, self.min_rows = float(decay), float(ridge), int(min_rows)
        d = len(FEATURES)
        self.a: np.ndarray = np.zeros((d, d))
        self.b: np.ndarray = np.zeros(d)
        self.rows = 0
        self.w: np.ndarray = np.zeros(d)

    @staticmethod
    def features(plans: np.ndarray, price_rel: np.ndarray) -> np.ndarray:
        """``[..., 6]`` :data:`FEATURES` of ``plans`` [..., 8] and relative planned prices [...] (NaN: unknown)."""
        price_known = np.isfinite(price_rel)
        return np.stack([plans[..., PROMO], plans[..., PROMO_KNOWN], plans[..., EVENT], plans[..., EVENT_KNOWN],
                         np.where(price_known, price_rel, 0.0), price_known.astype(float)], axis=-1).astype(float)

    def learn(self, x: np.ndarray, r: np.ndarray) -> None:
        """One bucket's rows: features ``x`` [m, 6], scaled residuals ``r`` [m]."""
        r = np.clip(np.asarray(r, float), -5.0, 5.0)
        self.a = self.decay * self.a + x.T @ x
        self.b = self.decay * self.b + x.T @ r
        self.rows += len(r)
        if self.rows >= self.min_rows:
            self.w = np.linalg.solve(self.a + self.ridge * np.eye(len(self.b)), self.b)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The scaled effect ``x.w`` of plans ``x`` [..., 6] (0 until ``min_rows`` rows were learned)."""
        return np.asarray(x @ self.w, float)
