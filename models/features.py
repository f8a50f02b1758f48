"""Model inputs from a dense rolling history: per-series scaling, lags, price, promo, calendar, hashed ids.

The history of ``S`` series is a float32 array ``[S, L, F]`` of the last ``L`` closed buckets ending at bucket
index ``t`` (``history[:, -1]`` is bucket ``t``), channels in :data:`CHANNELS` order, missing = 0. A *sample*
is a pair (series row, origin bucket ``o <= t``): its inputs come only from buckets ``<= o``, its targets are
the units of buckets ``o+1 .. o+H`` and the label of step ``h`` is *matured* only when ``o + h <= t``.

Positions before ``first_seen`` (pre-launch) and before the start of the array are *inactive*: they are left
out of every mean and imputed with the series' active mean, so a new series looks like a flat one at its own
level (with an age feature telling the model it is new).

Inputs ``x`` (float32, ``spec.n_inputs`` wide): ``lags`` units / scale; the last ``aux_lags`` of returns /
scale, views and add-to-carts over their own means, price relative to the series' usual price (mean of
revenue/units over the window, 1.0 when unknown) and promo share (promo_orders / orders); eight statics
(log mean units, views, add-to-carts, zero share, active share, log age, the last ``aux_lags`` units and the
last bucket's units over the scale); the calendar of the target buckets; and two dormancy inputs (see
:func:`dormancy_features`). The calendar of target
``o+h`` is the calendar of target ``o+1`` rotated by a fixed angle per step, i.e. a fixed linear map of it
(for the day of the month, within the month's length of a day), so the ten values of the first target bucket
carry every target's calendar to the linear paths of the network, at 1/H of the width.

>>> import numpy as np
>>> spec = FeatureSpec(horizon=3, lags=8, aux_lags=2, scale_window=8)
>>> hist = np.zeros((2, 12, len(CHANNELS)), np.float32)
>>> hist[:, :, UNITS] = 4.0
>>> batch = build_batch(hist, np.array([0, 11]), t=50, bucket_seconds=86_400, spec=spec,
...                     rows=np.array([0, 0]), lags_back=np.array([0, 2]))
>>> batch.x.shape == (2, spec.n_inputs), batch.scale.tolist(), batch.mask.tolist()
(True, [5.0, 5.0], [[False, False, False], [True, True, False]])
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tidecast.stream.timebuckets import BUCKET_ORIGIN_MS
from tidecast.stream.windows import ADD_TO_CART, METRICS, ORDERS, PROMO_ORDERS, RETURNS, REVENUE, UNITS, VIEWS

__all__ = [
    "ADD_TO_CART", "BUCKET_ORIGIN_S", "CHANNELS", "ORDERS", "PROMO_ORDERS", "RETURNS", "REVENUE", "UNITS", "VIEWS",
    "FeatureSpec", "HashIds", "SampleBatch", "build_batch", "calendar_features", "dormancy_features", "hash_ids",
]

CHANNELS = METRICS  # the input channels are the window metrics, in their order (owned by stream.windows)
BUCKET_ORIGIN_S = BUCKET_ORIGIN_MS // 1000  # bucket 0 starts Monday 1970-01-05T00:00:00Z (stream.timebuckets)
N_CALENDAR = 10  # sin/cos of hour-of-day, day-of-week, day-of-year, and two harmonics of the day of the month
N_STATIC = 8
N_AUX = 5  # returns, views, add_to_cart, relative price, promo share
N_DORMANCY = 2  # buckets since the last sale (log), and their ratio to the usual gap between sales (log)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Shape of the inputs. ``lags`` buckets of units, ``aux_lags`` of the other channels."""

    horizon: int = 14
    lags: int = 28
    aux_lags: int = 7
    scale_window: int = 28
    scale_eps: float = 1.0
    clip: float = 50.0

    def __post_init__(self) -> None:
        if not (self.horizon >= 1 and self.lags >= 1 and 1 <= self.aux_lags <= self.lags):
            raise ValueError("need horizon >= 1, lags >= 1 and 1 <= aux_lags <= lags")
        if not (1 <= self.scale_window <= self.lags) or self.scale_eps <= 0:
            raise ValueError("need 1 <= scale_window <= lags and scale_eps > 0")

    @property
    def n_inputs(self) -> int:
        """Width of the dense input vector ``x``."""
        return self.lags + N_AUX * self.aux_lags + N_STATIC + N_CALENDAR + N_DORMANCY


@dataclass(slots=True)
class SampleBatch:
    """Samples ready for the network. ``y``/``mask`` are empty (``[N, 0]``) when built for forecasting.

    ``x`` float32 [N, D] inputs; ``scale`` float32 [N] (series level, units per bucket, > 0);
    ``y`` float32 [N, H] target units (0 where not matured); ``mask`` bool [N, H] matured labels;
    ``rows``/``origin`` int64 [N].
    """

    x: np.ndarray
    scale: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    rows: np.ndarray
    origin: np.ndarray


def calendar_features(origins: np.ndarray, horizon: int, bucket_seconds: int) -> np.ndarray:
    """Calendar encoding ``[N, horizon, 10]`` of the target buckets ``o+1 .. o+horizon`` of each origin ``o``.

    Hour-of-day when buckets are shorter than a day, day-of-week and the day of the month when shorter than a
    week, and day-of-year (week-of-year for weekly buckets) always; each as (sin, cos), zero when it does not
    apply. The day of the month is the pay cycle: shoppers spend around paydays at the turn and the middle of
    the month (Rossmann's open-day sales run from 5,900 on the 24th to 8,400 on the 30th), so it has two
    harmonics, a monthly and a half-monthly one, of the phase ``(day - 1) / days in that month``.

    >>> calendar_features(np.array([-1]), 1, 86_400)[0, 0, 2:4].round(3).tolist()  # bucket 0 is a Monday
    [0.0, 1.0]
    """
    if bucket_seconds <= 0:
        raise ValueError("bucket_seconds must be positive")
    buckets = np.asarray(origins, np.int64)[:, None] + 1 + np.arange(horizon, dtype=np.int64)
    start_s = BUCKET_ORIGIN_S + buckets * int(bucket_seconds)
    day = start_s // 86_400
    sec = (start_s % 86_400).astype(np.float64)
    out = np.zeros((*buckets.shape, N_CALENDAR), np.float32)
    tau = 2.0 * math.pi
    if bucket_seconds < 86_400:
        angle = tau * sec / 86_400.0
        out[..., 0], out[..., 1] = np.sin(angle), np.cos(angle)
    if bucket_seconds < 604_800:
        angle = tau * (((day + 3) % 7) + sec / 86_400.0) / 7.0  # 1970-01-01 was a Thursday; Monday = 0
        out[..., 2], out[..., 3] = np.sin(angle), np.cos(angle)
    angle = tau * np.mod(day.astype(np.float64), 365.2425) / 365.2425
    out[..., 4], out[..., 5] = np.sin(angle), np.cos(angle)
    if bucket_seconds < 604_800:
        date = np.datetime64("1970-01-01", "D") + day
        month = date.astype("datetime64[M]")
        length = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.float64)
        phase = ((date - month.astype("datetime64[D]")).astype(np.float64) + sec / 86_400.0) / length
        for k, col in ((1, 6), (2, 8)):
            out[..., col], out[..., col + 1] = np.sin(tau * k * phase), np.cos(tau * k * phase)
    return out


@functools.lru_cache(maxsize=1 << 18)
def _digest(text: str) -> tuple[int, int]:
    raw = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")


def hash_ids(keys: Sequence[str], n_buckets: int, salt: str) -> np.ndarray:
    """Two stable hash buckets per key (int64 ``[N, 2]``), from BLAKE2b (never Python's salted ``hash``).

    The model sums the two embedding rows, so two keys share a vector only if both hashes collide.

    >>> hash_ids(["sku-1"], 1024, "sku").tolist() == hash_ids(["sku-1"], 1024, "sku").tolist()
    True
    """
    flat = np.fromiter(
        (h for key in keys for h in _digest(f"{salt}\x1f{key}")), dtype=np.int64, count=2 * len(keys)
    )
    return (flat % n_buckets).reshape(len(keys), 2)


class HashIds:
    """:func:`hash_ids` with a memory: each key is hashed once, then looked up (a panel's ids are asked for at
    every close: 1.3 s of a 27 s forecast stage on the 120-day M5-scale panel). Holds at most ``limit`` keys, then
    starts afresh.

    >>> ids = HashIds(1024, "sku")
    >>> ids(["a", "b", "a"]).tolist() == hash_ids(["a", "b", "a"], 1024, "sku").tolist()
    True
    """

    def __init__(self, n_buckets: int, salt: str, limit: int = 1 << 22) -> None:
        self.n_buckets, self.salt, self.limit = n_buckets, salt, limit
        self.index: dict[str, int] = {}
        self.ids = np.zeros((0, 2), np.int64)

    def __call__(self, keys: Sequence[str]) -> np.ndarray:
        index = self.index
        try:
            rows = np.fromiter(map(index.__getitem__, keys), np.int64, len(keys))
        except KeyError:
            new = list(dict.fromkeys(key for key in keys if key not in index))
            if len(index) + len(new) > self.limit:
                index.clear()
                self.ids = np.zeros((0, 2), np.int64)
                new = list(dict.fromkeys(keys))
            start = len(index)
            self.ids = np.concatenate([self.ids, hash_ids(new, self.n_buckets, self.salt)])
            index.update((key, start + k) for k, key in enumerate(new))
            rows = np.fromiter(map(index.__getitem__, keys), np.int64, len(keys))
        return self.ids[rows]


def _window(history: np.ndarray, rows: np.ndarray | None, ends: np.ndarray, length: int) -> np.ndarray:
    """``history[rows, ends-length+1 .. ends]`` as ``[N, length, F]``; positions outside the array read 0."""
    n_pos = history.shape[1]
    if rows is None and n_pos >= length and bool(np.all(ends == n_pos - 1)):
        return history[:, n_pos - length :]  # the forecasting fast path: a view, no copy
    pos = ends[:, None] - length + 1 + np.arange(length)
    inside = (pos >= 0) & (pos < n_pos)
    which = rows if rows is not None else np.arange(history.shape[0])[:, None]
    picked = history[which, np.clip(pos, 0, n_pos - 1)]
    return np.where(inside[..., None], picked, np.float32(0.0))


def _masked_mean(values: np.ndarray, active: np.ndarray | None, count: np.ndarray) -> np.ndarray:
    """Mean over the active positions of each row (``active=None``: all active), float32, 0 when none."""
    total = values.sum(axis=1, dtype=np.float32) if active is None else np.where(active, values, 0).sum(
        axis=1, dtype=np.float32)
    return total / np.maximum(count, 1).astype(np.float32)


@dataclass(slots=True)
class _Channels:
    """Channel-major float32 copies of a window: ``units``/``revenue``/``views``/``carts`` over all ``lags``
    positions, ``returns``/``orders``/``promo`` over the last ``aux_lags``."""

    units: np.ndarray
    revenue: np.ndarray
    views: np.ndarray
    carts: np.ndarray
    returns: np.ndarray
    orders: np.ndarray
    promo: np.ndarray


@dataclass(slots=True)
class _Activity:
    """Which window positions are active (at or after ``first_seen`` and inside the array).

    ``mask`` is None when every position of every sample is active (the common case, no masking needed);
    ``sw``/``aux`` are its last ``scale_window``/``aux_lags`` columns; ``n``/``n_sw`` count the active ones.
    """

    mask: np.ndarray | None
    sw: np.ndarray | None
    aux: np.ndarray | None
    n: np.ndarray
    n_sw: np.ndarray


@dataclass(slots=True)
class _Levels:
    """Active means over the scale window and the units scale (``mean_u + scale_eps``) with its inverse."""

    mean_u: np.ndarray
    mean_v: np.ndarray
    mean_c: np.ndarray
    scale: np.ndarray
    inv: np.ndarray


def _read_channels(win: np.ndarray, aux_lags: int) -> _Channels:
    """Channel-major float32 copies: contiguous rows make the reductions that follow fast."""
    units, revenue, views, carts = (np.array(win[..., c], np.float32) for c in (UNITS, REVENUE, VIEWS, ADD_TO_CART))
    returns, orders, promo = (np.array(win[:, -aux_lags:, c], np.float32) for c in (RETURNS, ORDERS, PROMO_ORDERS))
    return _Channels(units, revenue, views, carts, returns, orders, promo)


def _activity(seen: np.ndarray, origin: np.ndarray, ends: np.ndarray, spec: FeatureSpec) -> _Activity:
    """Active positions of each sample's window: from ``first_seen`` on, and inside the history array."""
    w, sw, a = spec.lags, spec.scale_window, spec.aux_lags
    first_pos = np.maximum(seen - (origin - (w - 1)), (w - 1) - ends)  # first active window position
    n_active = np.clip(w - first_pos, 0, w)
    n_active_sw = np.clip(np.minimum(w - first_pos, sw), 0, sw)
    if bool(np.all(first_pos <= 0)):
        return _Activity(None, None, None, n_active, n_active_sw)
    active = np.arange(w) >= first_pos[:, None]
    return _Activity(active, active[:, -sw:], active[:, -a:], n_active, n_active_sw)


def _levels(ch: _Channels, act: _Activity, spec: FeatureSpec) -> _Levels:
    """Each series' active means of units, views and carts over the scale window, and its units scale."""
    sw = spec.scale_window
    mean_u = _masked_mean(ch.units[:, -sw:], act.sw, act.n_sw)
    mean_v = _masked_mean(ch.views[:, -sw:], act.sw, act.n_sw)
    mean_c = _masked_mean(ch.carts[:, -sw:], act.sw, act.n_sw)
    scale = mean_u + np.float32(spec.scale_eps)
    return _Levels(mean_u, mean_v, mean_c, scale, (np.float32(1.0) / scale)[:, None])


def _impute(ch: _Channels, act: _Activity, lv: _Levels) -> None:
    """Fill inactive (pre-launch) positions in place: units, views, carts with the active mean, returns 0."""
    if act.mask is None:
        return
    assert act.aux is not None  # aux is mask's last columns: set whenever mask is
    ch.units = np.where(act.mask, ch.units, lv.mean_u[:, None])
    ch.views = np.where(act.mask, ch.views, lv.mean_v[:, None])
    ch.carts = np.where(act.mask, ch.carts, lv.mean_c[:, None])
    ch.returns = np.where(act.aux, ch.returns, 0)


def _relative_price(ch: _Channels, act: _Activity, aux_lags: int) -> np.ndarray:
    """Price (revenue / units) of the last ``aux_lags`` buckets over the series' usual price, in [0, 5]."""
    priced = (ch.units > 0) & (ch.revenue > 0)
    if act.mask is not None:
        priced &= act.mask
    price = np.divide(ch.revenue, ch.units, out=np.zeros_like(ch.revenue), where=priced)
    n_priced = priced.sum(axis=1)
    usual = price.sum(axis=1, dtype=np.float32) / np.maximum(n_priced, 1).astype(np.float32)
    rel = np.divide(price[:, -aux_lags:], usual[:, None], out=np.ones((len(usual), aux_lags), np.float32),
                    where=priced[:, -aux_lags:] & (usual[:, None] > 0))
    return np.clip(rel, 0.0, 5.0)


def _promo_share(ch: _Channels, act: _Activity) -> np.ndarray:
    """Promo orders over orders of the last ``aux_lags`` buckets, in [0, 1] (0 without orders)."""
    has_orders = ch.orders > 0 if act.aux is None else act.aux & (ch.orders > 0)
    return np.clip(np.divide(ch.promo, ch.orders, out=np.zeros_like(ch.promo), where=has_orders), 0.0, 1.0)


def _aux_features(ch: _Channels, act: _Activity, lv: _Levels, aux_lags: int) -> list[np.ndarray]:
    """The auxiliary blocks, in input order: returns, views, add-to-carts, relative price, promo share."""
    views_x = ch.views[:, -aux_lags:] / (lv.mean_v[:, None] + np.float32(1.0))
    carts_x = ch.carts[:, -aux_lags:] / (lv.mean_c[:, None] + np.float32(1.0))
    returns_x = ch.returns * lv.inv
    return [returns_x, views_x, carts_x, _relative_price(ch, act, aux_lags), _promo_share(ch, act)]


def _static_features(units_x: np.ndarray, ch: _Channels, act: _Activity, lv: _Levels, age: np.ndarray,
                     spec: FeatureSpec) -> np.ndarray:
    """The eight statics ``[N, 8]``: log levels, zero share, active share, log age, recent and latest units."""
    sw, w = spec.scale_window, spec.lags
    zeros = ch.units[:, -sw:] == 0
    if act.sw is not None:
        zeros &= act.sw
    zero_frac = zeros.sum(axis=1) / np.maximum(act.n_sw, 1)
    recent = units_x[:, -spec.aux_lags:].mean(axis=1)  # level of the last aux_lags buckets relative to the scale
    latest = units_x[:, -1]
    return np.stack(
        [np.log1p(lv.mean_u), np.log1p(lv.mean_v), np.log1p(lv.mean_c), zero_frac, act.n / w,
         np.log1p(np.clip(age, 0, 1000)) / math.log(1001.0), recent, latest],
        axis=1,
    ).astype(np.float32)


def dormancy_features(units: np.ndarray, active: np.ndarray | None, n_active: np.ndarray) -> np.ndarray:
    """Tell a long-dead item from a briefly quiet one: ``[N, 2]`` from each window of units ``[N, W]``.

    ``since``: buckets since the last sale (0: sold at the origin), over the active positions of the
    window; without a sale in it, the active length (the window caps it: the panel holds ``lags + horizon``
    buckets, and a sample ``horizon`` buckets back sees ``lags`` of them, so the cap is ``W = lags`` for
    every sample alike). ``gap``: the usual interval between sales, active positions over sales (Croston's
    inter-demand interval; the active length without a sale). Inputs: ``log1p(since) / log1p(W)`` and
    ``log1p(since / gap) / log1p(W)``; the zero share (a static) tells "no sale in the window" apart.

    >>> u = np.array([[0, 3, 0, 0, 0, 0], [2, 0, 2, 0, 2, 0], [0, 0, 0, 0, 0, 0]], np.float32)
    >>> f = dormancy_features(u, None, np.array([6, 6, 6]))
    >>> (f * np.log1p(6)).round(3).tolist()   # log1p(4), log1p(4/6); log1p(1), log1p(1/2); log1p(6), log1p(1)
    [[1.609, 0.511], [0.693, 0.405], [1.946, 0.693]]
    """
    width = units.shape[1]
    sold = units > 0 if active is None else (units > 0) & active
    any_sold = sold.any(axis=1)
    n_act = np.maximum(n_active, 1).astype(np.float32)
    since = np.where(any_sold, np.argmax(sold[:, ::-1], axis=1), n_act).astype(np.float32)
    gap = n_act / np.maximum(sold.sum(axis=1), 1).astype(np.float32)
    norm = np.float32(1.0 / math.log1p(width))
    return np.stack([np.log1p(since) * norm, np.log1p(since / gap) * norm], axis=1).astype(np.float32)


def _origin_calendar(origin: np.ndarray, bucket_seconds: int) -> np.ndarray:
    """Calendar ``[N, 6]`` of each sample's first target bucket, computed once per distinct origin."""
    uniq, inverse = np.unique(origin, return_inverse=True)
    return calendar_features(uniq, 1, bucket_seconds)[inverse.reshape(-1), 0]


def _finish_inputs(blocks: list[np.ndarray], clip: float) -> np.ndarray:
    """Concatenate the input blocks; non-finite values to 0 / +-clip, then everything clipped to +-clip."""
    x = np.concatenate(blocks, axis=1)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=clip, neginf=-clip)
    np.clip(x, -clip, clip, out=x)
    return x


def _targets(history: np.ndarray, rows: np.ndarray, ends: np.ndarray, origin: np.ndarray, seen: np.ndarray,
             horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Target units ``[N, H]`` of buckets ``origin+1 .. origin+H`` and the mask of the matured, active ones."""
    n_pos = history.shape[1]
    tpos = ends[:, None] + 1 + np.arange(horizon)
    in_array = (tpos >= 0) & (tpos <= n_pos - 1)
    mask = in_array & ((origin[:, None] + 1 + np.arange(horizon)) >= seen[:, None])
    picked = history[rows[:, None], np.clip(tpos, 0, n_pos - 1), UNITS]
    return np.where(mask, picked, 0.0).astype(np.float32), mask


def build_batch(
    history: np.ndarray,
    first_seen: np.ndarray,
    t: int,
    bucket_seconds: int,
    spec: FeatureSpec,
    rows: np.ndarray | None = None,
    lags_back: np.ndarray | None = None,
    with_targets: bool = True,
) -> SampleBatch:
    """Build samples at origins ``t - lags_back`` for series ``rows`` (default: every row, origin ``t``).

    Inputs read only buckets ``<= origin``; targets read only buckets ``<= t`` (``mask`` marks them).
    ``first_seen`` is indexed by row of ``history`` (bucket index of each series' first activity).
    """
    n_series, n_pos, _ = history.shape
    all_rows = rows is None
    rows_arr = np.arange(n_series, dtype=np.int64) if all_rows else np.asarray(rows, np.int64)
    back = np.zeros(len(rows_arr), np.int64) if lags_back is None else np.asarray(lags_back, np.int64)
    if np.any(back < 0):
        raise ValueError("origins must not lie after t (lags_back >= 0)")
    ends = (n_pos - 1) - back  # array position of each origin
    origin = int(t) - back
    seen = np.asarray(first_seen, np.int64)[rows_arr]

    ch = _read_channels(_window(history, None if all_rows else rows_arr[:, None], ends, spec.lags), spec.aux_lags)
    act = _activity(seen, origin, ends, spec)
    lv = _levels(ch, act, spec)
    dormancy = dormancy_features(ch.units, act.mask, act.n)  # before imputation: real sales only
    _impute(ch, act, lv)
    units_x = ch.units * lv.inv
    aux = _aux_features(ch, act, lv, spec.aux_lags)
    static = _static_features(units_x, ch, act, lv, origin - seen + 1, spec)
    x = _finish_inputs([units_x, *aux, static, _origin_calendar(origin, bucket_seconds), dormancy], spec.clip)

    if with_targets:
        y, mask = _targets(history, rows_arr, ends, origin, seen, spec.horizon)
    else:
        y, mask = np.zeros((len(rows_arr), 0), np.float32), np.zeros((len(rows_arr), 0), bool)
    return SampleBatch(x=x, scale=lv.scale.astype(np.float32), y=y, mask=mask, rows=rows_arr,
                       origin=origin.astype(np.int64))
