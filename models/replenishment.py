"""A periodic-review order-up-to policy replayed on actual demand, with lost sales: what a forecast's stock
targets would have done on the shelf.

The policy, per series (the textbook ``(R, S)`` policy; Silver, Pyke & Thomas, *Inventory and Production
Management in Supply Chains*, 4th ed., ch. 6):

- time runs in buckets; at the close of every ``review``-th bucket ``t`` (a review) the inventory position
  (on hand + on order) is raised to the order-up-to level ``S_t`` by an order of ``max(0, S_t - position)``;
- an order placed at the close of ``t`` arrives at the start of bucket ``t + 1 + lead`` (``lead`` whole buckets
  pass in between; ``lead = 0``: the next bucket), so each order must cover the demand of the ``lead +
  review`` buckets ``t+1 .. t+lead+review`` (the protection period) until the next order arrives;
- in each bucket the arrivals are put on the shelf first, then demand is served from stock; what cannot be
  served is lost (no backorders: a shopper who finds no stock buys elsewhere).

The level ``S_t`` comes from a forecast: the ``service`` quantile of the demand summed over the protection
period, known at the close of ``t``. A level of NaN places no order at that review (no forecast yet).

Measured over the buckets from ``start`` on (:class:`Outcome`):

- **fill rate**: units served / units demanded (the share of demand met from stock, "type 2" service);
- **cycle service level**: the share of replenishment cycles without a lost sale ("type 1" service); a cycle
  runs from one review's arrival to the next one's (``review`` buckets, the first starting when the first
  review's order arrives, at bucket ``review + lead``), counted per series when it starts at ``start`` or
  later and ends within the buckets given;
- **average stock**: units on hand at the end of each bucket, after demand, averaged over buckets and series;
- **stock-outs**: the (series, bucket) pairs with a lost sale.

>>> import numpy as np
>>> demand = np.array([[2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
>>> levels = np.full((1, 6), 8.0)   # 3 buckets of 2 units (lead 2 + review 1), and 2 units of safety stock
>>> out = simulate(levels, demand, lead=2, review=1, on_hand=np.array([8.0]))
>>> out.fill_rate, out.cycle_service, out.stockouts, out.avg_stock, out.cycles
(1.0, 1.0, 0, 3.0, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one policy did over the scored buckets (see the module docstring)."""

    fill_rate: float
    cycle_service: float
    avg_stock: float
    stockouts: int
    demand: float
    served: float
    cycles: int

    def as_dict(self) -> dict[str, float | int]:
        return {"fill_rate": self.fill_rate, "cycle_service": self.cycle_service, "avg_stock": self.avg_stock,
                "stockouts": self.stockouts}


def simulate(levels: np.ndarray, demand: np.ndarray, lead: int, review: int, on_hand: np.ndarray | None = None,
             start: int = 0) -> Outcome:
    """Replay the policy (module docstring) for ``S`` series over ``T`` buckets.

    ``levels`` [S, T]: the order-up-to level set at the close of each bucket (read at reviews only, the
    buckets ``b`` with ``b % review == review - 1``; NaN: no order); ``demand`` [S, T]: units demanded in each
    bucket (negative values count as 0); ``on_hand`` [S]: the stock before the first bucket (default 0);
    ``start``: the first bucket measured (the buckets before it warm the shelf up).

    >>> demand = np.array([[0.0, 5.0, 1.0, 1.0]])
    >>> out = simulate(np.full((1, 4), 2.0), demand, lead=0, review=1, on_hand=np.array([2.0]))
    >>> out.served, out.demand, out.stockouts   # 5 asked in bucket 1 with 2 on the shelf: 3 lost
    (4.0, 7.0, 1)
    """
    levels = np.asarray(levels, np.float64)
    demand = np.maximum(np.asarray(demand, np.float64), 0.0)
    if levels.shape != demand.shape or demand.ndim != 2:
        raise ValueError(f"levels {levels.shape} and demand {demand.shape} must both be [series, buckets]")
    if lead < 0 or review < 1:
        raise ValueError(f"lead must be >= 0 and review >= 1 buckets, got lead={lead}, review={review}")
    n, buckets = demand.shape
    stock = np.zeros(n) if on_hand is None else np.asarray(on_hand, np.float64).copy()
    arriving = np.zeros((n, buckets + lead + 2))  # units arriving at the start of each bucket
    on_order = np.zeros(n)
    served_total = demanded_total = stock_sum = 0.0
    stockouts = cycles = clean_cycles = 0
    lost_in_cycle = np.zeros(n, bool)
    first_arrival = review + lead  # the first review closes bucket review - 1
    for b in range(buckets + 1):
        ended = b > first_arrival and (b - first_arrival) % review == 0  # the cycle [b - review, b)
        if ended and b - review >= start:
            cycles += n
            clean_cycles += int((~lost_in_cycle).sum())
        if b >= first_arrival and (b - first_arrival) % review == 0:
            lost_in_cycle[:] = False
        if b == buckets:
            break
        stock += arriving[:, b]
        on_order -= arriving[:, b]
        served = np.minimum(stock, demand[:, b])
        stock -= served
        lost = demand[:, b] - served > 1e-9
        lost_in_cycle |= lost
        if b >= start:
            served_total += served.sum()
            demanded_total += demand[:, b].sum()
            stock_sum += stock.sum()
            stockouts += int(lost.sum())
        if b % review == review - 1:
            level = levels[:, b]
            order = np.where(np.isnan(level), 0.0, np.maximum(0.0, level - stock - on_order))
            arriving[:, b + 1 + lead] += order
            on_order += order
    measured = max(0, buckets - start)
    return Outcome(
        fill_rate=float(served_total / demanded_total) if demanded_total > 0 else 1.0,
        cycle_service=clean_cycles / cycles if cycles else 1.0,
        avg_stock=float(stock_sum / (n * measured)) if n and measured else 0.0,
        stockouts=stockouts,
        demand=float(demanded_total),
        served=float(served_total),
        cycles=cycles,
    )
