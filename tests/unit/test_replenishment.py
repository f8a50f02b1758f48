"""The periodic-review order-up-to replay (models/replenishment.py) on cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tidecast.models.replenishment import simulate


def test_an_order_arrives_lead_buckets_after_the_next_one() -> None:
    # nothing on hand; level 4 at every close; lead 2: the order of the close of bucket 0 is on the shelf in 3
    demand = np.array([[1.0, 1.0, 1.0, 1.0, 1.0]])
    out = simulate(np.full((1, 5), 4.0), demand, lead=2, review=1)
    # buckets 0-2 find an empty shelf (3 lost); bucket 3 gets 4, sells 1 (3 left); bucket 4 gets 0, sells 1
    assert (out.served, out.demand, out.stockouts) == (2.0, 5.0, 3)
    assert out.avg_stock == pytest.approx((0 + 0 + 0 + 3 + 2) / 5)


def test_sales_are_lost_not_backordered() -> None:
    demand = np.array([[3.0, 0.0, 0.0]])
    out = simulate(np.full((1, 3), 1.0), demand, lead=0, review=1, on_hand=np.array([1.0]))
    # 2 of the 3 units asked in bucket 0 are lost; the next order only refills to 1, owing nothing
    assert (out.served, out.stockouts, out.avg_stock) == (1.0, 1, pytest.approx(2 / 3))


def test_orders_only_at_reviews_and_cycles_between_arrivals() -> None:
    # review every 2 buckets (closes of buckets 1, 3, 5), lead 0: arrivals at the starts of 2, 4 (and 6)
    demand = np.array([[2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
    out = simulate(np.full((1, 6), 4.0), demand, lead=0, review=2, on_hand=np.array([3.0]))
    # b0 3->1, b1 sells 1 of 2 (lost), review: +4 in b2; b2 4->2, b3 2->0, review: +4; b4 2, b5 0
    assert (out.served, out.stockouts) == (11.0, 1)
    assert out.cycles == 2 and out.cycle_service == 1.0  # cycles [2, 4) and [4, 6), both without a lost sale


def test_a_stock_out_fails_its_cycle() -> None:
    demand = np.array([[0.0, 0.0, 5.0, 0.0, 1.0, 0.0]])
    out = simulate(np.full((1, 6), 2.0), demand, lead=0, review=2, on_hand=np.array([2.0]))
    assert out.cycles == 2 and out.cycle_service == 0.5 and out.stockouts == 1


def test_no_level_places_no_order() -> None:
    out = simulate(np.full((1, 4), np.nan), np.ones((1, 4)), lead=0, review=1, on_hand=np.array([2.0]))
    assert (out.served, out.stockouts) == (2.0, 2)


def test_the_warm_up_is_not_measured() -> None:
    demand = np.array([[1.0, 1.0, 1.0, 1.0]])
    out = simulate(np.full((1, 4), 2.0), demand, lead=1, review=1, start=2)
    # b0, b1 lost (empty shelf, warm-up; the order of b0's close covers b1's too); b2 gets 2, sells 1 (1 left),
    # b3 sells the last one (0 left; the order of b2's close arrives in b4)
    assert (out.demand, out.served, out.stockouts, out.avg_stock) == (2.0, 2.0, 0, 0.5)


def test_more_stock_never_fills_less() -> None:
    rng = np.random.default_rng(3)
    demand = rng.poisson(2.0, (50, 60)).astype(float)
    outs = [simulate(np.full((50, 60), level), demand, lead=2, review=1, start=5) for level in (2, 4, 6, 8, 12)]
    rates, stocks = [out.fill_rate for out in outs], [out.avg_stock for out in outs]
    assert rates == sorted(rates) and stocks == sorted(stocks) and rates[-1] > 0.99 > rates[0]


def test_bad_shapes_and_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="must both be"):
        simulate(np.ones((2, 3)), np.ones((2, 4)), lead=1, review=1)
    with pytest.raises(ValueError, match="review >= 1"):
        simulate(np.ones((1, 3)), np.ones((1, 3)), lead=1, review=0)
