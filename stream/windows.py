"""Feature windows: what one bucket of one series holds, and how events add to it.

Seven metrics per (series, bucket), all sums, so updates commute and can be applied in any order:

============  ==========================================================
units         quantity sold (sales with qty > 0)
orders        sale lines with qty > 0
revenue       sum of qty * price over sales with qty > 0 and a price
returns       quantity returned (sales with qty < 0, counted positive)
views         click events with action "view"
add_to_cart   click events with action "add_to_cart"
promo_orders  sale lines with qty > 0 flagged ``promo``
============  ==========================================================

>>> acc = WindowDelta()
>>> acc.add(Sale("e1", 0, "all:A", 2, 1.5, True), bucket=7)
>>> acc.add(Sale("e2", 0, "all:A", -1, 1.5, False), bucket=7)
>>> acc.add(Click("e3", 0, "all:A", "view"), bucket=7)
>>> acc.rows[(7, "all:A")]
[2, 1, 3.0, 1, 1, 0, 1]
"""

from __future__ import annotations

from tidecast.stream.events import Click, Sale

METRICS: tuple[str, ...] = ("units", "orders", "revenue", "returns", "views", "add_to_cart", "promo_orders")
"""The metric names, in the order of every row and of the model's input channels."""

UNITS, ORDERS, REVENUE, RETURNS, VIEWS, ADD_TO_CART, PROMO_ORDERS = range(len(METRICS))


class WindowDelta:
    """Per-(bucket, series) sums of a batch of events, ready to add to a window store."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], list[float]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, event: Sale | Click, bucket: int) -> None:
        key = (bucket, event.series)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0, 0, 0, 0, 0, 0, 0]
        if type(event) is Sale:
            qty = event.qty
            if qty > 0:
                row[UNITS] += qty
                row[ORDERS] += 1
                if event.price is not None:
                    row[REVENUE] += qty * event.price
                if event.promo:
                    row[PROMO_ORDERS] += 1
            else:
                row[RETURNS] -= qty
        elif type(event) is Click:
            row[VIEWS if event.action == "view" else ADD_TO_CART] += 1


def empty_row() -> list[float]:
    return [0] * len(METRICS)


def add_rows(into: list[float], row: list[float]) -> None:
    for i, value in enumerate(row):
        into[i] += value
