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
class Policy:
    """A periodic-review order-up-to policy: ``lead`` buckets between an order and the bucket before its
    arrival, a review every ``review`` buckets, and the order-up-to level set at each ``service`` level (the
    service quantile of the demand over the ``lead + review`` buckets of the protection period).

    >>> Policy.parse("lead=2,review=1,service=0.90/0.95/0.98")
    Policy(lead=2, review=1, services=(0.9, 0.95, 0.98))
    >>> Policy.parse("lead=2,service=0.95").protection
    3
    """

    lead: int = 2
    review: int = 1
    services: tuple[float, ...] = (0.9, 0.95, 0.98)

    def __post_init__(self) -> None:
        if self.lead < 0 or self.review < 1:
            raise ValueError(f"lead must be >= 0 and review >= 1 buckets, got lead={self.lead}, review={self.review}")
        if not self.services or any(not 0.0 < s < 1.0 for s in self.services) or list(self.services) != sorted(
                set(self.services)):
            raise ValueError(f"service levels must be distinct, increasing and inside (0, 1), got {self.services}")

    @property
    def protection(self) -> int:
        """Buckets one order must cover: until the next order arrives (``lead + review``)."""
        return self.lead + self.review

    @classmethod
    def parse(cls, text: str) -> Policy:
        """``lead=L,review=R,service=S1/S2/...`` (each part optional; defaults 2, 1, 0.90/0.95/0.98)."""
        fields: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            try:
                if name == "lead" and sep:
                    fields["lead"] = int(value)
                elif name == "review" and sep:
                    fields["review"] = int(value)
                elif name == "service" and sep:
                    fields["services"] = tuple(float(v) for v in value.split("/"))
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"not a policy part: {part!r} (expected lead=BUCKETS, review=BUCKETS or "
                                 "service=LEVEL[/LEVEL...], e.g. lead=2,review=1,service=0.90/0.95/0.98)") from None
        return cls(**fields)  # type: ignore[arg-type]


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


class Shelf:
    """The policy replayed bucket by bucket for a panel that may grow (the streaming form of :func:`simulate`).

    Each series joins with :meth:`add`: ``anchor``, the bucket its first order arrives in (cycles run from
    there, ``review`` buckets each), and ``begin``, its first measured bucket. Then, for every bucket ``b`` in
    order, :meth:`bucket` (arrivals, then the demand) and, at a review, :meth:`review` (the close's order).
    :meth:`outcome` counts the cycles that ended up to the bucket it is given.

    >>> shelf = Shelf(lead=0, review=1)
    >>> shelf.add(1, anchor=1, begin=1)
    >>> shelf.review(0, np.array([3.0]))                     # close of bucket 0: order 3, on the shelf in 1
    >>> for b, units in enumerate([2.0, 2.0, 4.0], start=1):
    ...     shelf.bucket(b, np.array([units]))
    ...     shelf.review(b, np.array([3.0]))
    >>> out = shelf.outcome(4)
    >>> out.served, out.demand, out.stockouts, out.cycles, out.cycle_service
    (7.0, 8.0, 1, 3, 0.6666666666666666)
    """

    def __init__(self, lead: int, review: int) -> None:
        if lead < 0 or review < 1:
            raise ValueError(f"lead must be >= 0 and review >= 1 buckets, got lead={lead}, review={review}")
        self.lead, self.review_every = int(lead), int(review)
        self.stock = np.zeros(0)
        self.on_order = np.zeros(0)
        self.pipeline = np.zeros((self.lead + 1, 0))  # row b % (lead + 1): units arriving at the start of b
        self.anchor = np.zeros(0, np.int64)
        self.begin = np.zeros(0, np.int64)
        self.lost_in_cycle = np.zeros(0, bool)
        self.served = self.demanded = self.stock_sum = 0.0
        self.measured = self.stockouts = self.cycles = self.clean_cycles = 0

    def __len__(self) -> int:
        return len(self.stock)

    def add(self, n: int, anchor: int, begin: int, on_hand: np.ndarray | float = 0.0) -> None:
        """``n`` series join, with ``on_hand`` units on the shelf (see the class docstring)."""
        self.stock = np.concatenate([self.stock, np.broadcast_to(np.asarray(on_hand, np.float64), (n,))])
        self.on_order = np.concatenate([self.on_order, np.zeros(n)])
        self.pipeline = np.concatenate([self.pipeline, np.zeros((self.lead + 1, n))], axis=1)
        self.anchor = np.concatenate([self.anchor, np.full(n, anchor, np.int64)])
        self.begin = np.concatenate([self.begin, np.full(n, begin, np.int64)])
        self.lost_in_cycle = np.concatenate([self.lost_in_cycle, np.zeros(n, bool)])

    def _cycles_to(self, b: int) -> None:
        """Count the cycles ending at the start of bucket ``b``; a new cycle starts where one is due."""
        due = (b >= self.anchor) & ((b - self.anchor) % self.review_every == 0)
        ended = due & (b > self.anchor) & (b - self.review_every >= self.begin)
        self.cycles += int(ended.sum())
        self.clean_cycles += int((ended & ~self.lost_in_cycle).sum())
        self.lost_in_cycle[due] = False

    def bucket(self, b: int, demand: np.ndarray) -> None:
        """Bucket ``b``: its arrivals go on the shelf, then ``demand`` [S] (negative counts as 0) is served."""
        self._cycles_to(b)
        slot = b % (self.lead + 1)
        arriving = self.pipeline[slot].copy()
        self.pipeline[slot] = 0.0
        self.stock += arriving
        self.on_order -= arriving
        demand = np.maximum(np.asarray(demand, np.float64), 0.0)
        served = np.minimum(self.stock, demand)
        self.stock -= served
        lost = demand - served > 1e-9
        self.lost_in_cycle |= lost
        m = b >= self.begin
        self.served += float(served[m].sum())
        self.demanded += float(demand[m].sum())
        self.stock_sum += float(self.stock[m].sum())
        self.stockouts += int((lost & m).sum())
        self.measured += int(m.sum())

    def review(self, b: int, levels: np.ndarray) -> None:
        """The close of bucket ``b``, a review: raise each position to ``levels`` [S] (NaN: no order)."""
        order = np.maximum(0.0, np.where(np.isnan(levels), 0.0, levels - self.stock - self.on_order))
        self.pipeline[(b + 1 + self.lead) % (self.lead + 1)] += order
        self.on_order += order

    def outcome(self, end: int) -> Outcome:
        """What the policy did up to the start of bucket ``end`` (the cycles ending there included)."""
        self._cycles_to(end)
        return Outcome(
            fill_rate=self.served / self.demanded if self.demanded > 0 else 1.0,
            cycle_service=self.clean_cycles / self.cycles if self.cycles else 1.0,
            avg_stock=self.stock_sum / self.measured if self.measured else 0.0,
            stockouts=self.stockouts,
            demand=self.demanded,
            served=self.served,
            cycles=self.cycles,
        )


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
    demand = np.asarray(demand, np.float64)
    if levels.shape != demand.shape or demand.ndim != 2:
        raise ValueError(f"levels {levels.shape} and demand {demand.shape} must both be [series, buckets]")
    shelf = Shelf(lead, review)
    n, buckets = demand.shape
    shelf.add(n, anchor=review + lead, begin=start, on_hand=0.0 if on_hand is None else on_hand)
    for b in range(buckets):
        shelf.bucket(b, demand[:, b])
        if b % review == review - 1:
            shelf.review(b, levels[:, b])
    return shelf.outcome(buckets)
