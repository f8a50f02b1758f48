"""The backtest's replenishment replay (``--simulate``): every model's stock targets put on a shelf.

At the close of each bucket ``t`` that is a review (``t % review == review - 1``), every model sets each
series' order-up-to level for every service level of the :class:`~tidecast.models.replenishment.Policy`,
from the forecast it issues at that close; :class:`~tidecast.models.replenishment.Shelf` replays the orders
on the actual demand, with lost sales. A level is the ``service`` quantile of the demand over the ``lead +
review`` buckets of the protection period:

- **tidecast**: its lead-time quantile at ``L = lead + review`` and that level (the network learns the service
  levels as quantiles of its lead-time head, :mod:`tidecast.models.lead_time`); a series it did not publish
  for has level 0, as a consumer of the topic would read it;
- **a baseline**: its point forecast summed over those buckets plus the ``service`` quantile of its own
  errors of such sums, per series over the last :data:`RESIDUAL_WINDOW` that matured (:class:`SafetyStock`):
  the empirical safety stock a retailer's formula would add. Its errors are gathered from the first close,
  warm-up included.

A series joins the shelves at the first scored origin it is in; its first order arrives ``lead + 1`` buckets
after its first review, and it is measured from then (so no model is charged with the empty shelf it starts
from). Every model meets the same demand on the same buckets.

>>> from tidecast.models.replenishment import Policy
>>> replay = InventoryReplay(Policy(lead=0, review=1, services=(0.5,)), ["naive"])
>>> for t, units in enumerate([2.0, 2.0, 2.0, 2.0]):
...     replay.close(t, np.array([units]), {"naive": np.array([[2.0]])}, scored=True)
>>> replay.outcome(4)["naive"]
[{'service': 0.5, 'fill_rate': 1.0, 'cycle_service': 1.0, 'avg_stock': 0.0, 'stockouts': 0}]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from tidecast.models.replenishment import Policy, Shelf

RESIDUAL_WINDOW = 56
"""The matured errors per series a baseline's safety stock is read from (8 weeks of daily buckets)."""


class SafetyStock:
    """A baseline's levels: point sum over the protection period + the service quantile of its past errors.

    >>> stock = SafetyStock(protection=1, services=(0.5, 0.9), window=4)
    >>> for t, units in enumerate([3.0, 5.0, 4.0, 6.0]):
    ...     stock.observe(t, np.array([units]))
    ...     levels = stock.levels(t, np.array([4.0]))   # it always says 4: errors 1 (5 - 4), 0 and 2
    >>> levels.round(2).tolist()                        # 4 + the median error 1, 4 + its 90% quantile 1.8
    [[5.0, 5.8]]
    """

    def __init__(self, protection: int, services: Sequence[float], window: int = RESIDUAL_WINDOW) -> None:
        self.protection, self.services = int(protection), np.asarray(services, np.float64)
        self.errors = np.zeros((0, window))
        self.filled = 0  # errors written per series so far (the ring's next column is filled % window)
        self.pending: deque[tuple[int, np.ndarray, np.ndarray]] = deque()  # (close, point sum, demand so far)

    def observe(self, t: int, units: np.ndarray) -> None:
        """Bucket ``t`` closed with ``units`` [S]: every pending sum advances; the one issued ``protection``
        closes ago matures into an error."""
        for _, _, demand in self.pending:
            demand += units[: len(demand)]
        if self.pending and t - self.pending[0][0] >= self.protection:
            _, point, demand = self.pending.popleft()
            if len(self.errors) < len(point):  # a series new since: before its first sale, forecast 0 and sold 0
                self.errors = np.vstack([self.errors, np.zeros((len(point) - len(self.errors), self.errors.shape[1]))])
            self.errors[: len(point), self.filled % self.errors.shape[1]] = demand - point
            self.filled += 1

    def levels(self, t: int, point_sum: np.ndarray) -> np.ndarray:
        """``[S, services]``: the levels for the forecast issued at the close of ``t`` whose point sums over the
        protection period are ``point_sum`` [S] (kept to meet their errors); no error yet: no safety stock."""
        n = len(point_sum)
        safety = np.zeros((n, len(self.services)))
        kept = min(self.filled, self.errors.shape[1])
        if kept:
            rows = min(n, len(self.errors))
            safety[:rows] = np.quantile(self.errors[:rows, :kept], self.services, axis=1).T
        self.pending.append((int(t), np.asarray(point_sum, np.float64).copy(), np.zeros(n)))
        return np.maximum(0.0, point_sum[:, None] + safety)


class InventoryReplay:
    """One shelf per (model, service level) (module docstring); ``models``: the lineup's model names."""

    def __init__(self, policy: Policy, models: Sequence[str]) -> None:
        self.policy = policy
        self.shelves = {name: [Shelf(policy.lead, policy.review) for _ in policy.services] for name in models}

    def close(self, t: int, units: np.ndarray, levels: Mapping[str, np.ndarray], scored: bool) -> None:
        """Bucket ``t`` closed with ``units`` [S]: it is served from every shelf; then, at a review, each model's
        ``levels`` [S, services] order. ``scored``: the origin ``t + 1`` is scored, so new series join."""
        p = self.policy
        review = t % p.review == p.review - 1
        first_review = t + (p.review - 1 - t % p.review)
        for name, shelves in self.shelves.items():
            for k, shelf in enumerate(shelves):
                if len(shelf):
                    shelf.bucket(t, units[: len(shelf)])
                if scored and len(units) > len(shelf):
                    arrives = first_review + 1 + p.lead
                    shelf.add(len(units) - len(shelf), anchor=arrives, begin=arrives)
                if review and len(shelf):
                    shelf.review(t, levels[name][: len(shelf), k])

    def outcome(self, end: int) -> dict[str, list[dict]]:
        """Per model, one entry per service level: what its shelves did up to bucket ``end``."""
        return {name: [{"service": service, **shelf.outcome(end).as_dict()}
                       for service, shelf in zip(self.policy.services, shelves, strict=True)]
                for name, shelves in self.shelves.items()}


def stock_at_same_fill(inventory: Mapping[str, Sequence[Mapping[str, float]]],
                       model: str = "tidecast") -> dict[str, list[dict[str, float | None]]]:
    """Per other model and service level: the average stock ``model`` holds at the same fill rate (its
    curve of stock against fill rate, linear between its service levels; None outside the fill rates its
    levels reached), and the ratio of the two (below 1: ``model`` needs less stock for that fill rate).

    >>> inv = {"tidecast": [{"fill_rate": 0.5, "avg_stock": 10.0}, {"fill_rate": 1.0, "avg_stock": 20.0}],
    ...        "naive": [{"service": 0.9, "fill_rate": 0.75, "avg_stock": 30.0},
    ...                  {"service": 0.95, "fill_rate": 0.25, "avg_stock": 40.0}]}
    >>> [(row["tidecast_stock"], row["ratio"]) for row in stock_at_same_fill(inv)["naive"]]
    [(15.0, 0.5), (None, None)]
    """
    if model not in inventory:
        return {}
    points = sorted((row["fill_rate"], row["avg_stock"]) for row in inventory[model])
    fill, stock = (np.array(v) for v in zip(*points, strict=True))
    out: dict[str, list[dict[str, float | None]]] = {}
    for name, rows in inventory.items():
        if name == model:
            continue
        out[name] = []
        for row in rows:
            inside = fill[0] <= row["fill_rate"] <= fill[-1]
            ours = float(np.interp(row["fill_rate"], fill, stock)) if inside else None
            ratio = ours / row["avg_stock"] if ours is not None and row["avg_stock"] > 0 else None
            out[name].append({"service": row["service"], "fill_rate": row["fill_rate"], "avg_stock": row["avg_stock"],
                              "tidecast_stock": ours, "ratio": ratio})
    return out
