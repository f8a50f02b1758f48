"""The synthetic generator: valid, ordered, deterministic, and every planted pattern visible in its events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidecast.producers.synthetic import (
    CLICK_LEAD_HOURS,
    DOW_FACTOR,
    HOUR_PROFILE,
    SyntheticConfig,
    generate,
    series_ids,
    series_truth,
    shifted_series,
)
from tidecast.stream.events import Click, Sale, validate_dict


@dataclass
class Counts:
    """Events binned as arrays (series, hour) of sale orders, units, views and add-to-carts."""

    config: SyntheticConfig
    orders: np.ndarray
    units: np.ndarray
    views: np.ndarray
    carts: np.ndarray
    promo_orders: np.ndarray
    first_hour: np.ndarray  # first hour with any event, -1 for none

    @property
    def daily(self) -> np.ndarray:
        return self.orders.reshape(len(self.orders), -1, 24).sum(axis=2)


def count(config: SyntheticConfig) -> Counts:
    index = {s: i for i, s in enumerate(series_ids(config))}
    shape = (config.series, config.days * 24)
    names = ("orders", "units", "views", "carts", "promo")
    arrays = {name: np.zeros(shape, dtype=np.int64) for name in names}
    first = np.full(config.series, -1)
    for event in generate(config):
        i = index[f"{event['store']}:{event['sku']}"]
        hour = (datetime.fromisoformat(event["ts"]) - config.start) // timedelta(hours=1)
        if first[i] < 0:
            first[i] = hour
        if event["type"] == "sale":
            arrays["orders"][i, hour] += 1
            arrays["units"][i, hour] += event["qty"]
            arrays["promo"][i, hour] += event["promo"]
        else:
            arrays["views" if event["action"] == "view" else "carts"][i, hour] += 1
    return Counts(config, *(arrays[name] for name in names), first)


@pytest.fixture(scope="module")
def default() -> Counts:
    return count(SyntheticConfig(series=200, days=28, seed=7))


@pytest.fixture(scope="module")
def clean() -> Counts:
    """No shift, no new items, no slow movers: seasonality, price and promo effects alone."""
    config = SyntheticConfig(series=300, days=28, seed=3, shift_fraction=0.0, new_item_fraction=0.0,
                             slow_mover_fraction=0.0, clicks=False)
    return count(config)


def hourly_truth(config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(regular price, promo flag, seasonal base rate) per series and hour, from series_truth.

    The base rate leaves out the shift and the launch: use it on configs without them."""
    hours = config.days * 24
    moments = [config.start + timedelta(hours=t) for t in range(hours)]
    season = np.array([HOUR_PROFILE[m.hour] * DOW_FACTOR[m.weekday()] / 24 for m in moments])
    price = np.zeros((config.series, hours))
    promo = np.zeros((config.series, hours), dtype=bool)
    base = np.zeros((config.series, hours))
    for i, truth in enumerate(series_truth(config)):
        price[i] = truth.base_price
        for change in truth.price_changes:
            price[i, (change.at - config.start) // timedelta(hours=1):] = change.price
        for window in truth.promos:
            promo[i, (window.start - config.start) // timedelta(hours=1):
                  (window.end - config.start) // timedelta(hours=1)] = True
        base[i] = truth.base_rate * season
    return price, promo, base


# -- contract, order, determinism ---------------------------------------------------------------------------


def test_every_event_validates_in_time_order_with_unique_ids() -> None:
    config = SyntheticConfig(series=40, days=7, seed=11)
    events = list(generate(config))
    parsed = [validate_dict(e) for e in events]
    assert {type(p) for p in parsed} == {Sale, Click}
    times = [p.ts_ms for p in parsed]
    assert times == sorted(times)
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(e["ts"].endswith("+00:00") for e in events)
    assert config.start.timestamp() * 1000 <= times[0] and times[-1] < config.end.timestamp() * 1000
    sales = [e for e in events if e["type"] == "sale"]
    assert all(type(e["qty"]) is int and e["qty"] > 0 and type(e["price"]) is float for e in sales)
    assert {p.series for p in parsed} <= set(series_ids(config))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), series=st.integers(1, 12), days=st.integers(1, 3),
       stores=st.integers(1, 5), clicks=st.booleans())
def test_any_small_config_is_valid_ordered_and_reproducible(seed, series, days, stores, clicks) -> None:
    config = SyntheticConfig(series=series, days=days, seed=seed, stores=stores, clicks=clicks)
    events = list(generate(config))
    assert events == list(generate(config))
    times = [validate_dict(e).ts_ms for e in events]
    assert times == sorted(times)
    assert clicks or all(e["type"] == "sale" for e in events)


def test_same_seed_same_events_other_seed_other_events() -> None:
    config = SyntheticConfig(series=20, days=3, seed=5)
    first = list(generate(config))
    assert first == list(generate(SyntheticConfig(series=20, days=3, seed=5)))
    assert first[0]["event_id"] == "s5-0"
    assert first != list(generate(SyntheticConfig(series=20, days=3, seed=6)))
    assert shifted_series(config) == shifted_series(SyntheticConfig(series=20, days=3, seed=5))


def test_series_ids_and_truth() -> None:
    config = SyntheticConfig(series=10, stores=3)
    assert series_ids(config)[:4] == ["s0:sku0000", "s1:sku0000", "s2:sku0000", "s0:sku0001"]
    truth = series_truth(config)
    assert [t.series for t in truth] == series_ids(config)
    assert {t.series for t in truth if t.shifted} == shifted_series(config)
    assert len(shifted_series(SyntheticConfig(series=200))) == 40


def test_config_checks_and_defaults() -> None:
    config = SyntheticConfig(days=30, start=datetime(2026, 1, 5, 1, tzinfo=timezone(timedelta(hours=1))))
    assert config.start == datetime(2026, 1, 5, tzinfo=UTC) and config.start.tzinfo is UTC
    assert config.shift_day == 20 and config.shift_time == datetime(2026, 1, 25, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        SyntheticConfig(start=datetime(2026, 1, 5))
    with pytest.raises(ValueError, match="whole hour"):
        SyntheticConfig(start=datetime(2026, 1, 5, 0, 30, tzinfo=UTC))
    with pytest.raises(ValueError, match="shift_fraction"):
        SyntheticConfig(shift_fraction=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        SyntheticConfig(series=0)


# -- realism ------------------------------------------------------------------------------------------------


def test_daily_profile_quiet_nights_busy_midday_and_evening(clean: Counts) -> None:
    by_hour = clean.orders.sum(axis=0).reshape(-1, 24).sum(axis=0)
    night, midday, evening = by_hour[1:5].mean(), by_hour[11:14].mean(), by_hour[18:21].mean()
    assert midday > 5 * night and evening > 5 * night
    assert by_hour[19] > by_hour[15]  # the evening peak is a peak


def test_weekend_uplift(clean: Counts) -> None:
    per_day = clean.daily.sum(axis=0)
    weekday = np.array([(clean.config.start + timedelta(days=d)).weekday() for d in range(clean.config.days)])
    assert per_day[weekday >= 5].mean() > 1.15 * per_day[weekday < 5].mean()


def test_base_levels_spread_log_normally(clean: Counts) -> None:
    truth = series_truth(clean.config)
    rates = np.array([t.base_rate for t in truth])
    logs = np.log(rates)
    assert 0.6 < logs.std() < 1.0 and abs(np.median(rates) - 2.0) < 0.5
    totals = clean.orders.sum(axis=1)
    rank = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    assert np.corrcoef(rank(totals), rank(rates))[0, 1] > 0.85
    assert np.percentile(totals, 90) > 4 * np.percentile(totals, 10)


def test_demand_follows_price_with_elasticity_about_minus_one_and_a_half(clean: Counts) -> None:
    price, promo, base = hourly_truth(clean.config)
    truth = series_truth(clean.config)
    ratio = price / np.array([[t.base_price] for t in truth])
    keep = ~promo
    observed, exposure, log_ratio = clean.orders[keep], base[keep], np.log(ratio[keep])
    assert (ratio[keep] < 0.95).sum() > 1000 and (ratio[keep] > 1.05).sum() > 1000  # prices did move
    grid = np.linspace(-3.0, 0.0, 301)  # Poisson maximum likelihood of one common elasticity
    loglik = [(observed * b * log_ratio - exposure * np.exp(b * log_ratio)).sum() for b in grid]
    assert -1.8 < grid[int(np.argmax(loglik))] < -1.2


def test_promotions_cut_the_price_and_lift_demand(clean: Counts) -> None:
    _, promo, _ = hourly_truth(clean.config)
    assert promo.any(axis=1).mean() > 0.5  # most series run a promotion in four weeks
    assert (clean.promo_orders[~promo] == 0).all()  # promo=true exactly inside the windows
    assert (clean.promo_orders[promo] == clean.orders[promo]).all()
    has = promo.any(axis=1)
    inside = clean.orders[has][promo[has]].sum() / promo[has].sum()
    outside = clean.orders[has][~promo[has]].sum() / (~promo[has]).sum()
    assert inside > 1.6 * outside
    small = SyntheticConfig(series=30, days=14, seed=3, clicks=False)
    events = [e for e in generate(small) if e["type"] == "sale"]
    truth = {t.series: t for t in series_truth(small)}
    for e in events:
        if e["promo"]:
            regular = truth[f"{e['store']}:{e['sku']}"]
            assert e["price"] < max([regular.base_price] + [c.price for c in regular.price_changes])


def test_slow_movers_sell_on_few_days(default: Counts) -> None:
    slow = np.array([t.slow_mover for t in series_truth(default.config)])
    old = np.array([t.launch == default.config.start for t in series_truth(default.config)])
    assert slow.sum() == 50
    zero_days = (default.daily == 0).mean(axis=1)
    assert zero_days[slow & old].mean() > 0.7
    assert zero_days[~slow & old].mean() < 0.3


def test_new_items_start_late(default: Counts) -> None:
    truth = series_truth(default.config)
    new = np.array([t.launch > default.config.start for t in truth])
    assert new.sum() == 20
    launch_hours = np.array([(t.launch - default.config.start) // timedelta(hours=1) for t in truth])
    assert (launch_hours[new] >= 48).all()
    for i in np.flatnonzero(new):
        assert default.first_hour[i] == -1 or default.first_hour[i] >= launch_hours[i] - CLICK_LEAD_HOURS
        assert default.orders[i, : launch_hours[i]].sum() == 0
    assert (default.first_hour[~new] < 24).mean() > 0.9


def test_shifted_series_change_level_by_the_factor() -> None:
    config = SyntheticConfig(series=300, days=21, seed=4, new_item_fraction=0.0, shift_factor=2.0,
                             clicks=False)
    counts = count(config)
    shifted = np.array([s in shifted_series(config) for s in series_ids(config)])
    assert shifted.sum() == 60
    at = (config.shift_time - config.start) // timedelta(hours=1)
    assert at == 14 * 24
    before, after = counts.orders[:, at - 7 * 24 : at].sum(axis=1), counts.orders[:, at:].sum(axis=1)
    change = after[shifted].sum() / before[shifted].sum()
    control = after[~shifted].sum() / before[~shifted].sum()
    assert 1.6 < change / control < 2.5


def test_clicks_track_and_lead_sales(default: Counts) -> None:
    orders, views, carts = default.orders, default.views, default.carts
    assert 10 < views.sum() / orders.sum() < 20
    assert 2 < carts.sum() / orders.sum() < 3
    assert np.corrcoef(views.sum(axis=1), orders.sum(axis=1))[0, 1] > 0.95
    sales, clicks = orders.sum(axis=0).astype(float), (views + carts).sum(axis=0).astype(float)
    lead = np.corrcoef(clicks[:-1], sales[1:])[0, 1]  # clicks an hour before the sales
    same = np.corrcoef(clicks, sales)[0, 1]
    lag = np.corrcoef(clicks[1:], sales[:-1])[0, 1]  # clicks an hour after
    assert lead > same > lag and lead > 0.9


def test_order_lines_are_mostly_single_units(clean: Counts) -> None:
    orders, units = clean.orders.sum(), clean.units.sum()
    assert 1.3 < units / orders < 1.7
    assert (clean.units >= clean.orders).all() and (clean.units <= 5 * clean.orders).all()
