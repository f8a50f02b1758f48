"""Each series' stock target at a close: its replenishment policy, its order-up-to level and, where its stock
position is known, the quantity to order.

The policy of a series is resolved field by field (lead time, review, service level): the series' own
``policy`` event, else its store's, else the settings (``TIDECAST_LEAD_TIME``, ``TIDECAST_REVIEW``,
``TIDECAST_SERVICE_LEVEL``). A resolved policy whose protection period (lead time + review) is longer than the
horizon cannot be read from the forecast: the series gets the settings' policy, and its target says why.

The order-up-to level is the service-level quantile of the demand over the protection period, read from the
lead-time quantiles at ``L = lead + review`` and interpolated linearly between the levels the model learns.
With an ``inventory`` event, the suggested order is ``max(0, order_up_to - on_hand - on_order)``: the position
as last reported (sales since then are not subtracted; the target carries the report's time).

>>> import numpy as np
>>> from tidecast.models.replenishment import Policy
>>> from tidecast.stream.standing import StandingEntry
>>> lead = np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]]] * 2)  # 2 series, L = 1..3, 3 levels
>>> policies = {"s1": StandingEntry(0, 0, (0, None, 0.7)), "s1:B": StandingEntry(0, 1, (None, 2, None))}
>>> stock = stock_targets(["s1:A", "s1:B"], lead, (0.5, 0.9, 0.95), Policy(1, 1, (0.9,)), policies,
...                       {"s1:A": StandingEntry(86_400_000, 2, (0.5, 0.25))})
>>> stock.lead_time.tolist(), stock.review.tolist(), stock.service.tolist(), stock.source  # B: its store's 0, 0.7
([0, 0], [1, 2], [0.7, 0.7], ['store', 'series'])
>>> stock.order_up_to.tolist(), stock.order_quantity.tolist()  # 0.7 lies between 0.5 and 0.9
([1.5, 3.0], [0.75, nan])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tidecast.models.replenishment import Policy
from tidecast.stream.events import split_series
from tidecast.stream.standing import StandingEntry

OVER_HORIZON = "the policy's lead time + review is longer than the horizon: the settings' policy is used"
"""Why a series' target uses the settings' policy although it has an override."""


@dataclass(frozen=True, slots=True)
class StockTargets:
    """The targets of ``S`` series at one close (arrays of length S, in the order of the series)."""

    levels: tuple[float, ...]
    """The levels of the lead-time quantiles (``values``' last axis)."""
    lead_time: np.ndarray
    review: np.ndarray
    service: np.ndarray
    source: list[str]
    """Where each series' policy came from: ``series``, ``store`` (any field from there) or ``settings``."""
    values: np.ndarray
    """[S, QL]: the lead-time quantiles of each series' protection period."""
    order_up_to: np.ndarray
    on_hand: np.ndarray
    """NaN where no inventory was reported (also ``on_order``, ``as_of_ms`` -1 and ``order_quantity``)."""
    on_order: np.ndarray
    as_of_ms: np.ndarray
    order_quantity: np.ndarray
    notes: dict[int, str] = field(default_factory=dict)
    """Series index -> why its policy is not the one asked for."""

    @property
    def protection(self) -> np.ndarray:
        """Buckets of each series' protection period (lead time + review)."""
        return self.lead_time + self.review


def resolve(series: Sequence[str], default: Policy, policies: Mapping[str, StandingEntry],
            horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict[int, str]]:
    """Per series: lead time, review, service level, source and notes (see the module docstring).

    >>> lead, review, service, source, notes = resolve(["s1:A"], Policy(2, 1, (0.95,)),
    ...                                                 {"s1": StandingEntry(0, 0, (9, None, None))}, 7)
    >>> lead.tolist(), review.tolist(), service.tolist(), source, notes == {0: OVER_HORIZON}
    ([2], [1], [0.95], ['settings'], True)
    """
    fallback = (default.lead, default.review, default.services[0])
    size = len(series)
    lead, review = np.full(size, default.lead, np.int64), np.full(size, default.review, np.int64)
    service = np.full(size, default.services[0], np.float64)
    source = ["settings"] * size
    notes: dict[int, str] = {}
    if not policies:
        return lead, review, service, source, notes
    for i, name in enumerate(series):
        own, store = policies.get(name), policies.get(split_series(name)[0])
        if own is None and store is None:
            continue
        picked = []
        for k in range(3):
            value, origin = fallback[k], "settings"
            for entry, where in ((own, "series"), (store, "store")):
                if entry is not None and entry.values[k] is not None:
                    value, origin = entry.values[k], where
                    break
            picked.append((value, origin))
        if picked[0][0] + picked[1][0] > horizon:
            notes[i] = OVER_HORIZON
            continue
        lead[i], review[i], service[i] = (value for value, _ in picked)
        origins = {origin for _, origin in picked}
        source[i] = "series" if "series" in origins else "store" if "store" in origins else "settings"
    return lead, review, service, source, notes


def at_levels(values: np.ndarray, levels: Sequence[float], wanted: np.ndarray) -> np.ndarray:
    """Per row of ``values`` [S, QL] (non-decreasing along the levels), the value at level ``wanted[s]``,
    linear between the two levels around it and the nearest one outside them.

    >>> at_levels(np.array([[1.0, 3.0], [1.0, 3.0]]), (0.9, 0.95), np.array([0.925, 0.99])).round(6).tolist()
    [2.0, 3.0]
    """
    grid = np.asarray(levels, np.float64)
    wanted = np.clip(wanted, grid[0], grid[-1])
    upper = np.clip(np.searchsorted(grid, wanted), 1, len(grid) - 1) if len(grid) > 1 else np.zeros(len(wanted), int)
    lower = np.maximum(upper - 1, 0)
    span = grid[upper] - grid[lower]
    weight = np.divide(wanted - grid[lower], span, out=np.zeros_like(wanted), where=span > 0)
    rows = np.arange(len(values))
    return values[rows, lower] + weight * (values[rows, upper] - values[rows, lower])


def stock_targets(series: Sequence[str], lead: np.ndarray, levels: Sequence[float], default: Policy,
                  policies: Mapping[str, StandingEntry], inventory: Mapping[str, StandingEntry]) -> StockTargets:
    """The targets of ``series`` from their lead-time quantiles ``lead`` [S, H, QL] at ``levels`` (see the
    module docstring); ``policies`` by series or store, ``inventory`` by series."""
    if len(lead) != len(series):
        raise ValueError(f"{len(series)} series but {len(lead)} lead-time forecasts")
    if not 1 <= default.protection <= lead.shape[1]:
        raise ValueError(f"lead + review ({default.protection} buckets) must be within the horizon ({lead.shape[1]})")
    lead_time, review, service, source, notes = resolve(series, default, policies, lead.shape[1])
    rows = np.arange(len(series))
    values = np.asarray(lead, np.float64)[rows, lead_time + review - 1]
    order_up_to = at_levels(values, levels, service)
    on_hand, on_order = np.full(len(series), np.nan), np.full(len(series), np.nan)
    as_of = np.full(len(series), -1, np.int64)
    if inventory:
        for i, name in enumerate(series):
            entry = inventory.get(name)
            if entry is not None:
                on_hand[i], on_order[i] = entry.values
                as_of[i] = entry.issued_ms
    order_quantity = np.maximum(order_up_to - on_hand - on_order, 0.0)  # NaN stays NaN
    return StockTargets(tuple(levels), lead_time, review, service, source, values, order_up_to, on_hand, on_order,
                        as_of, order_quantity, notes)
