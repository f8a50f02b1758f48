"""Synthetic click and sale events with known ground truth, for demos, tests and benchmarks.

Each series (``store:sku``) sells at an hourly Poisson rate built from: a log-normally spread base level,
an hour-of-day profile (quiet nights, a midday and an evening peak), a weekend uplift, price steps with a
constant price elasticity (demand scales as ``(price / base_price) ** elasticity``, elasticity about -1.5),
promotion windows of a few days (price cut, extra uplift, ``promo: true`` on their sales), and an abrupt
demand shift (rate times ``shift_factor``) for a subset of series at ``shift_at_day``. Some series are
intermittent slow movers, some are new items launched mid-stream. Views and add-to-carts run at about
15x and 2.5x the sale rate, driven by the rate :data:`CLICK_LEAD_HOURS` ahead, so clicks lead sales.

Events come out in non-decreasing ``ts`` order, one hour at a time, and are the same for the same config.
:func:`series_truth` tells tests and benchmarks what was planted.

>>> config = SyntheticConfig(series=8, days=2, seed=1)
>>> events = list(generate(config))
>>> events == list(generate(config))
True
>>> sorted({e["type"] for e in events}), events[0]["ts"] >= "2026-01-05T00:00:00+00:00"
(['click', 'sale'], True)
>>> series_ids(config)[:3]
['s0:sku0000', 's1:sku0000', 's2:sku0000']
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np

from tidecast.stream.events import split_many

_HOURLY = [0.15, 0.1, 0.08, 0.07, 0.08, 0.15, 0.35, 0.6, 0.85, 1.05, 1.2, 1.35,
           1.5, 1.45, 1.25, 1.15, 1.2, 1.35, 1.55, 1.7, 1.6, 1.25, 0.8, 0.4]  # fmt: skip
HOUR_PROFILE = np.array(_HOURLY) / np.mean(_HOURLY)
"""Relative sale intensity by UTC hour of day (mean 1)."""
_WEEKLY = [0.92, 0.9, 0.93, 0.97, 1.05, 1.3, 1.2]
DOW_FACTOR = np.array(_WEEKLY) / np.mean(_WEEKLY)
"""Relative sale intensity by weekday, Monday first (mean 1): Saturday and Sunday are the busiest."""
CLICK_LEAD_HOURS = 1
"""Clicks in hour ``t`` are driven by the sale rate of hour ``t + CLICK_LEAD_HOURS``."""
QTY_VALUES = np.arange(1, 6)
QTY_PROBS = np.array([0.72, 0.14, 0.07, 0.04, 0.03])
"""Units per order line: mostly 1, sometimes 2 to 5."""
_PRICE_STEPS = 3  # at most this many regular price changes per series
_PROMO_SLOT_DAYS = 14  # at most one promotion per slot of this many days
_DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
_SUFFIX = [f"{m:02d}:{s:02d}+00:00" for m in range(60) for s in range(60)]


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. ``start`` must be timezone-aware and on a whole hour; it is converted to UTC.

    ``shift_at_day`` defaults to two thirds of ``days``; ``shift_fraction`` of the series have their rate
    multiplied by ``shift_factor`` from then on.
    """

    series: int = 200
    days: int = 28
    seed: int = 0
    start: datetime = _DEFAULT_START
    stores: int = 4
    shift_at_day: float | None = None
    shift_fraction: float = 0.2
    shift_factor: float = 2.0
    new_item_fraction: float = 0.1
    slow_mover_fraction: float = 0.25
    clicks: bool = True

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, got {self.start!r}")
        start = self.start.astimezone(UTC)
        if start.minute or start.second or start.microsecond:
            raise ValueError(f"start must be on a whole hour, got {self.start.isoformat()}")
        object.__setattr__(self, "start", start)
        if self.series < 1 or self.days < 1 or self.stores < 1:
            raise ValueError("series, days and stores must be at least 1")
        for name in ("shift_fraction", "new_item_fraction", "slow_mover_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.shift_factor < 0:
            raise ValueError(f"shift_factor must not be negative, got {self.shift_factor}")

    @property
    def shift_day(self) -> float:
        """The day (from ``start``) the demand shift happens: ``shift_at_day`` or two thirds of ``days``."""
        return self.days * 2 / 3 if self.shift_at_day is None else self.shift_at_day

    @property
    def shift_time(self) -> datetime:
        """The moment of the demand shift, rounded to the hour."""
        return self.start + timedelta(hours=round(self.shift_day * 24))

    @property
    def end(self) -> datetime:
        """End (exclusive) of the generated period."""
        return self.start + timedelta(days=self.days)


class PriceChange(NamedTuple):
    at: datetime
    price: float  # the regular price from ``at`` on


class PromoWindow(NamedTuple):
    start: datetime
    end: datetime  # exclusive
    price_cut: float  # fraction off the regular price
    uplift: float  # demand multiplier on top of the price effect


@dataclass(frozen=True)
class SeriesTruth:
    """What the generator planted in one series (rates are orders per day before any multiplier)."""

    series: str
    store: str
    sku: str
    base_rate: float
    base_price: float
    elasticity: float
    slow_mover: bool
    launch: datetime
    shifted: bool
    view_ratio: float
    cart_ratio: float
    price_changes: tuple[PriceChange, ...] = field(default=())
    promos: tuple[PromoWindow, ...] = field(default=())


@dataclass(frozen=True)
class _Params:
    """Per-series parameters as arrays over series (prices and times in hours since start)."""

    stores: list[str]
    skus: list[str]
    rate: np.ndarray
    slow: np.ndarray
    launch_hour: np.ndarray
    shifted: np.ndarray
    base_price: np.ndarray
    elasticity: np.ndarray
    step_hour: np.ndarray  # (series, _PRICE_STEPS); never for unused slots
    step_factor: np.ndarray
    promo_start: np.ndarray  # (series, slots); -1 for none
    promo_end: np.ndarray
    promo_cut: np.ndarray
    promo_uplift: np.ndarray
    view_ratio: np.ndarray
    cart_ratio: np.ndarray


def series_ids(config: SyntheticConfig) -> list[str]:
    """The ``store:sku`` ids, sku-major: ``s0:sku0000``, ``s1:sku0000``, ... (each sku in every store)."""
    return [f"s{i % config.stores}:sku{i // config.stores:04d}" for i in range(config.series)]


def shifted_series(config: SyntheticConfig) -> set[str]:
    """The series whose rate is multiplied by ``shift_factor`` from ``config.shift_time`` on."""
    params = _draw(config)
    return {s for s, flag in zip(series_ids(config), params.shifted.tolist(), strict=True) if flag}


def series_truth(config: SyntheticConfig) -> list[SeriesTruth]:
    """The planted parameters of every series, in :func:`series_ids` order."""
    p = _draw(config)
    at = lambda hour: config.start + timedelta(hours=int(hour))  # noqa: E731
    out = []
    for i, sid in enumerate(series_ids(config)):
        steps = sorted((int(h), float(f)) for h, f in zip(p.step_hour[i], p.step_factor[i], strict=True)
                       if h < config.days * 24)
        changes, mult = [], 1.0
        for hour, factor in steps:
            mult *= factor
            changes.append(PriceChange(at(hour), round(float(p.base_price[i]) * mult, 2)))
        promos = tuple(
            PromoWindow(at(s), at(e), float(c), float(u))
            for s, e, c, u in zip(p.promo_start[i], p.promo_end[i], p.promo_cut[i], p.promo_uplift[i],
                                  strict=True)
            if s >= 0
        )
        out.append(SeriesTruth(
            series=sid, store=p.stores[i], sku=p.skus[i], base_rate=float(p.rate[i]),
            base_price=float(p.base_price[i]), elasticity=float(p.elasticity[i]), slow_mover=bool(p.slow[i]),
            launch=at(p.launch_hour[i]), shifted=bool(p.shifted[i]), view_ratio=float(p.view_ratio[i]),
            cart_ratio=float(p.cart_ratio[i]), price_changes=tuple(changes), promos=promos,
        ))
    return out


def generate(config: SyntheticConfig) -> Iterator[dict]:
    """Yield sale and click event dicts (the JSON contract) in non-decreasing ``ts`` order."""
    p = _draw(config)
    rng = np.random.default_rng([config.seed, 2])
    n_series = config.series
    hours = config.days * 24
    shift_hour = round(config.shift_day * 24)
    all_series = np.arange(n_series)
    stores, skus, seed = p.stores, p.skus, config.seed
    n = 0
    states = [_hour_state(config, p, t, shift_hour) for t in range(CLICK_LEAD_HOURS)]
    for t in range(hours):
        states.append(_hour_state(config, p, t + CLICK_LEAD_HOURS, shift_hour))
        lam, price, promo = states.pop(0)
        lead = states[-1][0]
        sold = np.repeat(all_series, rng.poisson(lam))
        if config.clicks:
            viewed = np.repeat(all_series, rng.poisson(p.view_ratio * lead))
            carted = np.repeat(all_series, rng.poisson(p.cart_ratio * lead))
        else:
            viewed = carted = sold[:0]
        n_sold, n_viewed = len(sold), len(viewed)
        who = np.concatenate([sold, viewed, carted]).tolist()
        offsets = rng.integers(0, 3600, size=len(who))
        order = np.argsort(offsets, kind="stable").tolist()
        offsets = offsets.tolist()
        qty = rng.choice(QTY_VALUES, size=n_sold, p=QTY_PROBS).tolist()
        prices = price[sold].tolist()
        promos = promo[sold].tolist()
        prefix = (config.start + timedelta(hours=t)).strftime("%Y-%m-%dT%H:")
        for j in order:
            s = who[j]
            ts = prefix + _SUFFIX[offsets[j]]
            if j < n_sold:
                yield {"event_id": f"s{seed}-{n}", "type": "sale", "ts": ts, "sku": skus[s],
                       "store": stores[s], "qty": qty[j], "price": prices[j], "promo": promos[j]}
            else:
                action = "view" if j < n_sold + n_viewed else "add_to_cart"
                yield {"event_id": f"s{seed}-{n}", "type": "click", "ts": ts, "sku": skus[s],
                       "store": stores[s], "action": action}
            n += 1


def _hour_state(config: SyntheticConfig, p: _Params, t: int, shift_hour: int):
    """Sale rate (orders in hour ``t``), current price and promo flag of every series."""
    when = config.start + timedelta(hours=t)
    season = HOUR_PROFILE[when.hour] * DOW_FACTOR[when.weekday()] / 24.0
    regular = np.round(p.base_price * np.where(p.step_hour <= t, p.step_factor, 1.0).prod(axis=1), 2)
    active = (p.promo_start <= t) & (t < p.promo_end)
    promo = active.any(axis=1)
    cut = (active * p.promo_cut).sum(axis=1)
    uplift = np.where(promo, (active * p.promo_uplift).sum(axis=1), 1.0)
    price = np.where(promo, np.round(regular * (1.0 - cut), 2), regular)
    lam = p.rate * season * (price / p.base_price) ** p.elasticity * uplift * (t >= p.launch_hour)
    if t >= shift_hour:
        lam = np.where(p.shifted, lam * config.shift_factor, lam)
    return lam, price, promo


def _pick(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: round(n * fraction)]] = True
    return mask


def _draw(config: SyntheticConfig) -> _Params:
    """All per-series parameters, from their own random stream so that they never depend on the events."""
    rng = np.random.default_rng([config.seed, 1])
    n, hours = config.series, config.days * 24
    rate = rng.lognormal(math.log(2.0), 0.8, n)
    slow = _pick(rng, n, config.slow_mover_fraction)
    rate = np.where(slow, rng.uniform(0.05, 0.3, n), rate)
    new = _pick(rng, n, config.new_item_fraction)
    lo = max(1, round(hours * 0.15))
    launch_hour = np.where(new, rng.integers(lo, max(lo + 1, round(hours * 0.6)), n), 0)
    shifted = _pick(rng, n, config.shift_fraction)
    base_price = np.maximum(np.round(rng.lognormal(math.log(6.0), 0.6, n), 2), 0.5)
    elasticity = np.clip(rng.normal(-1.5, 0.25, n), -2.5, -0.7)
    n_steps = rng.integers(1, _PRICE_STEPS + 1, n)
    step_hour = rng.integers(min(24, hours - 1), hours, (n, _PRICE_STEPS))
    step_hour = np.where(np.arange(_PRICE_STEPS) < n_steps[:, None], step_hour, np.iinfo(np.int64).max)
    step_factor = 1.0 + rng.choice([-1.0, 1.0], (n, _PRICE_STEPS)) * rng.uniform(0.05, 0.2, (n, _PRICE_STEPS))
    slots = max(1, math.ceil(config.days / _PROMO_SLOT_DAYS))
    bounds = [config.days * j // slots for j in range(slots + 1)]
    has = rng.random((n, slots)) < 0.5
    length = rng.integers(2, 6, (n, slots))
    offset = rng.random((n, slots))
    promo_start = np.full((n, slots), -1)
    promo_end = np.full((n, slots), -1)
    for j in range(slots):
        slot_len = bounds[j + 1] - bounds[j]
        days_on = np.minimum(length[:, j], slot_len)
        first = bounds[j] + np.floor(offset[:, j] * (slot_len - days_on + 1)).astype(int)
        promo_start[:, j] = np.where(has[:, j], first * 24, -1)
        promo_end[:, j] = np.where(has[:, j], (first + days_on) * 24, -1)
    stores, skus = split_many(series_ids(config))
    return _Params(
        stores=stores, skus=skus,
        rate=rate, slow=slow, launch_hour=launch_hour, shifted=shifted, base_price=base_price,
        elasticity=elasticity, step_hour=step_hour, step_factor=step_factor,
        promo_start=promo_start, promo_end=promo_end,
        promo_cut=rng.uniform(0.1, 0.3, (n, slots)), promo_uplift=rng.uniform(1.3, 1.8, (n, slots)),
        view_ratio=rng.uniform(10.0, 20.0, n), cart_ratio=rng.uniform(2.0, 3.0, n),
    )


def planned_promotions(config: SyntheticConfig, ahead_days: int = 7) -> list[dict]:
    """Plan events announcing every planted promotion ``ahead_days`` before it starts: one per series and day
    the promotion covers (``promo: true``), in issue order, for ``<prefix>plans`` (docs/events.md).

    >>> plans = planned_promotions(SyntheticConfig(series=8, days=60, seed=1), ahead_days=3)
    >>> plans[0]["type"], plans[0]["promo"], plans == sorted(plans, key=lambda p: p["ts"])
    ('plan', True, True)
    """
    if ahead_days < 1:
        raise ValueError("plans are issued at least a day ahead")
    end = config.start + timedelta(days=config.days)
    out = []
    for truth in series_truth(config):
        for window in truth.promos:
            day = window.start.replace(hour=0)
            issued = day - timedelta(days=ahead_days)
            while day < min(window.end, end):
                out.append({"event_id": f"plan-{truth.series}-{day.date()}", "type": "plan",
                            "ts": issued.isoformat(), "for": (day + timedelta(hours=12)).isoformat(),
                            "store": truth.store, "sku": truth.sku, "promo": True})
                day += timedelta(days=1)
    return sorted(out, key=lambda doc: doc["ts"])
