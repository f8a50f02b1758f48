"""The published forecasts of a sample of series, kept until their labels mature, for the calibration.

Adaptive conformal calibration (:mod:`tidecast.models.calibration`) asks, of each label, whether it fell below
each quantile *that was published for it*. Scoring the label instead with the network as it is when the label
matures answers another question: by then the network has learned from the buckets between the origin and
the target (steps 1..h-1 of later origins, and, with daily buckets, the same target's neighbours), so its
re-made forecast of step h is partly in-sample and misses less than the published one did. Calibrated on it,
the offsets left the far steps too narrow: on a weekly Rossmann panel the published 80% band covered 81%
at step 1 and 68% at step 8. This memory keeps, for each of the last H + 1 origins, what was published for a
sample of at most ``capacity`` series (the quantiles in units, the bounds that held them, the volume band, the
scale, and which steps count), keyed by series, so that at each close the labels that matured meet the forecasts that
were published for them.

It is bounded: ``capacity`` series (evenly spread over those forecast) times H origins times H steps times
the quantile levels; with the defaults (2,048 series, H = 14, 3 levels) 7.8 MiB as saved with the learner
(measured with keys of 20 characters).

>>> import numpy as np
>>> memory = ForecastMemory(horizon=2, capacity=8)
>>> published = np.array([[[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]], np.float32)       # one series, 2 steps
>>> memory.remember(10, [("s1", "a")], published, np.zeros((1, 2, 3), np.int8), np.array([2]),
...                 np.array([2.5], np.float32), np.ones((1, 2), bool))
>>> got = memory.matured(11, ["s0", "s1"], ["a", "a"], np.array([7.0, 6.0]), np.zeros(2, np.int64))
>>> got.published.tolist(), got.y.tolist(), got.step.tolist(), got.band.tolist()   # step 1 of origin 10
([[0.0, 2.0, 4.0]], [6.0], [0], [2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from .calibration import QuantileCalibrator
from .features import UNITS

__all__ = ["ForecastMemory", "Matured", "SeriesIndex", "counted", "meet_published", "published_scores"]

SEP = "\x1f"  # joins store and sku into one key (the unit separator: in no id a producer sends)


class SeriesIndex:
    """The rows of a panel's series, looked up by the memory's keys (store and sku joined by :data:`SEP`) in
    bulk: a sorted array of keys searched in C, not a dict probed key by key (which cost 6 s of a 60 s
    Online Retail backtest with two memories).

    >>> index = SeriesIndex(["s", "s", "t"], ["b", "a", "a"])
    >>> index.rows(np.array(["s\x1fa", "u\x1fz", "t\x1fa"])).tolist()   # -1: not in the panel
    [1, -1, 2]
    """

    def __init__(self, stores: Sequence[str], skus: Sequence[str]) -> None:
        keys = np.array([s + SEP + k for s, k in zip(stores, skus, strict=True)], dtype=str)
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Each key's row (int64), -1 where the panel has no such series."""
        if not len(self.sorted) or not len(keys):
            return np.full(len(keys), -1, np.int64)
        at = np.minimum(np.searchsorted(self.sorted, keys), len(self.sorted) - 1)
        return np.where(self.sorted[at] == keys, self.order[at], -1).astype(np.int64)


def counted(lag_inputs: np.ndarray, closed: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """Bool ``[n, H]`` (or ``[n, 1]``): the steps of the samples ``rows`` whose labels calibrate: not planned
    closed (``closed`` [N, H] or None; such a step is 0 by plan) and with a sale in the input window
    (``lag_inputs`` [n, lags] of those rows): long-dead series are not forecast, and would pull the slow
    band's offsets.

    >>> counted(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[True, False], [False, False]]), np.arange(2)).tolist()
    [[False, True], [False, False]]
    """
    sold = np.asarray((lag_inputs > 0).any(axis=1))[:, None]
    return sold if closed is None else sold & ~closed[rows]


class Matured(NamedTuple):
    """Labels that matured at a close with the forecasts published for them (flat, one row per label)."""

    published: np.ndarray  # [M, Q] units
    y: np.ndarray  # [M] units
    step: np.ndarray  # [M] 0-based step of the forecast
    band: np.ndarray  # [M] volume band at the forecast
    held: np.ndarray  # [M, Q] int8, see QuantileCalibrator.calibrate
    scale: np.ndarray  # [M] the series' scale at the forecast (units)
    row: np.ndarray  # [M] the series' row in the history the labels were read from


class _Record(NamedTuple):
    keys: np.ndarray  # [n] str: store + SEP + sku
    published: np.ndarray  # [n, H, Q] float32
    held: np.ndarray  # [n, H, Q] int8
    band: np.ndarray  # [n] int64
    scale: np.ndarray  # [n] float32
    counts: np.ndarray  # [n, H] bool: the steps whose labels calibrate (not planned closed, a sale in the window)


class ForecastMemory:
    """What was published for a sample of series at each of the last ``horizon`` origins (module docstring)."""

    def __init__(self, horizon: int, capacity: int = 2048) -> None:
        if horizon < 1 or capacity < 1:
            raise ValueError("need horizon >= 1 and capacity >= 1")
        self.horizon, self.capacity = int(horizon), int(capacity)
        self._records: dict[int, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def sample(self, n: int) -> np.ndarray:
        """Rows (of ``n`` forecast) to remember: all of them up to ``capacity``, else ``capacity`` evenly spread.

        >>> ForecastMemory(3, capacity=4).sample(10).tolist()
        [0, 3, 6, 9]
        """
        if n <= self.capacity:
            return np.arange(n, dtype=np.int64)
        return np.unique(np.linspace(0, n - 1, self.capacity).round().astype(np.int64))

    def remember(self, t: int, series: Sequence[tuple[str, str]], published: np.ndarray, held: np.ndarray,
                 band: np.ndarray, scale: np.ndarray, counts: np.ndarray) -> None:
        """Keep what was published at origin ``t`` for ``series`` ((store, sku) each); a repeated origin
        replaces its record, and origins that can have no label left to mature are dropped (origin ``t - H`` is
        kept: its step H matures at ``t``, whether the caller learns from ``t`` before or after forecasting)."""
        self._records[int(t)] = _Record(np.array([store + SEP + sku for store, sku in series], dtype=str),
                                        np.asarray(published, np.float32), np.asarray(held, np.int8),
                                        np.asarray(band, np.int64), np.asarray(scale, np.float32),
                                        np.broadcast_to(np.asarray(counts, bool), np.shape(published)[:2]).copy())
        for origin in [o for o in self._records if o < t - self.horizon]:  # t-H's step H matures at t
            del self._records[origin]

    def matured(self, t: int, stores: Sequence[str], skus: Sequence[str], units: np.ndarray,
                first_seen: np.ndarray, rows: SeriesIndex | None = None) -> Matured:
        """The labels of bucket ``t`` (``units`` [S] of the series ``stores``/``skus``, ``first_seen`` [S]) met by
        the forecasts remembered at origins ``t-1 .. t-H``; series no longer present are left out. ``units``
        [S, H] gives each step back its own label (column ``h - 1`` for the origin ``t - h``): the lead-time
        sums of the last ``h`` buckets. ``rows``: the :class:`SeriesIndex` of ``stores``/``skus``, when the
        caller has it already (two memories met at one close)."""
        wanted = {(origin, t - origin): rec for origin, rec in self._records.items() if 1 <= t - origin <= self.horizon}
        index = SeriesIndex(stores, skus) if rows is None else rows
        parts = []
        for (_, h), rec in wanted.items():
            found = index.rows(rec.keys)
            idx = np.flatnonzero(found >= 0)
            if not len(idx):
                continue
            at = found[idx]
            ok = rec.counts[idx, h - 1] & (np.asarray(first_seen)[at] <= t)
            idx, at = idx[ok], at[ok]
            labels = np.asarray(units, np.float64)
            parts.append((rec.published[idx, h - 1], labels[at] if labels.ndim == 1 else labels[at, h - 1],
                          np.full(len(idx), h - 1, np.int64), rec.band[idx], rec.held[idx, h - 1], rec.scale[idx],
                          at))
        if not parts:
            n_q = next(iter(self._records.values())).published.shape[-1] if self._records else 0
            return Matured(np.zeros((0, n_q), np.float32), np.zeros(0), np.zeros(0, np.int64),
                           np.zeros(0, np.int64), np.zeros((0, n_q), np.int8), np.zeros(0, np.float32),
                           np.zeros(0, np.int64))
        return Matured(*(np.concatenate(col) for col in zip(*parts, strict=True)))

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors only (weights-only loadable)."""
        return {"horizon": self.horizon, "capacity": self.capacity, "records": {
            str(origin): {"keys": rec.keys.tolist(), "published": torch.from_numpy(rec.published),
                          "held": torch.from_numpy(rec.held), "band": torch.from_numpy(rec.band),
                          "scale": torch.from_numpy(rec.scale), "counts": torch.from_numpy(rec.counts)}
            for origin, rec in self._records.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["horizon"]) != self.horizon:
            raise ValueError(f"forecast memory of horizon {state['horizon']}, expected {self.horizon}")
        self._records = {
            int(origin): _Record(np.array(list(rec["keys"]), dtype=str), rec["published"].numpy(), rec["held"].numpy(),
                                 rec["band"].numpy(), rec["scale"].numpy(), rec["counts"].numpy())
            for origin, rec in state["records"].items()}


def published_scores(matured: Matured, history: np.ndarray, first_seen: np.ndarray, t: int,
                     quantiles: Sequence[float]) -> dict[str, float]:
    """Sums over the labels of ``matured`` (history ``[S, L, 7]`` ending at bucket ``t``) that score what was
    published, for rolling accuracy figures (the metrics average them over recent closes): ``labels``;
    ``covered``, inside the closed band of the levels 0.1 and 0.9 (0 without them); and, over the ``scaled``
    labels of series whose units moved in the history, the median's absolute error (``abs_error``) and the
    mean pinball loss over the levels (``pinball``), each divided by the series' mean absolute change from one
    bucket to the next over the history from its first activity (MASE's and SPL's scale, but over this window,
    which ends at the label's bucket, rather than over the history before the forecast: a variant).

    >>> h = np.zeros((1, 4, 7), np.float32); h[0, :, 0] = [2, 4, 2, 4]         # |change| 2 a bucket
    >>> m = Matured(np.array([[1.0, 3.0, 5.0]]), np.array([4.0]), np.zeros(1, np.int64), np.zeros(1, np.int64),
    ...             np.zeros((1, 3), np.int8), np.ones(1), np.zeros(1, np.int64))
    >>> published_scores(m, h, np.zeros(1, np.int64), 9, (0.1, 0.5, 0.9))
    {'labels': 1.0, 'covered': 1.0, 'scaled': 1.0, 'abs_error': 0.5, 'pinball': 0.15}
    """
    taus = np.asarray(quantiles, np.float64)
    sums = {"labels": float(len(matured.y)), "covered": 0.0, "scaled": 0.0, "abs_error": 0.0, "pinball": 0.0}
    if not len(matured.y):
        return sums
    levels = list(np.round(taus, 6))
    if 0.1 in levels and 0.9 in levels:
        lo, hi = matured.published[:, levels.index(0.1)], matured.published[:, levels.index(0.9)]
        sums["covered"] = float(np.sum((matured.y >= lo) & (matured.y <= hi)))
    n_pos = history.shape[1]
    series, of_label = np.unique(matured.row, return_inverse=True)  # each series once: up to H labels share it
    first = np.clip(np.asarray(first_seen, np.int64)[series] - (int(t) - (n_pos - 1)), 0, n_pos - 1)
    units = history[series, :, UNITS].astype(np.float64)
    moved = (np.arange(1, n_pos) > first[:, None])  # a change between two buckets from its first activity on
    change = (np.where(moved, np.abs(np.diff(units, axis=1)), 0.0).sum(axis=1)
              / np.maximum(moved.sum(axis=1), 1))[of_label]
    ok = change > 0
    if not ok.any():
        return sums
    y, q, scale = matured.y[ok], matured.published[ok], change[ok]
    median = q[:, int(np.argmin(np.abs(taus - 0.5)))]
    diff = y[:, None] - q
    pinball = np.maximum(taus * diff, (taus - 1.0) * diff).mean(axis=1)
    sums.update(scaled=float(ok.sum()), abs_error=float(np.sum(np.abs(y - median) / scale)),
                pinball=float(np.sum(pinball / scale)))
    return sums


def meet_published(memory: ForecastMemory, calibrator: QuantileCalibrator, history: np.ndarray,
                   first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str], t: int,
                   quantiles: Sequence[float], rows: SeriesIndex | None = None) -> dict[str, float]:
    """The labels of bucket ``t`` (the last column of ``history``) met by what was published for them: one
    calibration step, and the sums that score them (:func:`published_scores`)."""
    matured = memory.matured(t, stores, skus, history[:, -1, UNITS], first_seen, rows)
    calibrator.update_published(matured.published, matured.y, matured.step, matured.band, matured.held,
                                matured.scale)
    return published_scores(matured, history, first_seen, t, quantiles)
