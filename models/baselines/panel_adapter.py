"""A baseline behind the learner's interface: ``learn``/``forecast`` on a panel history, like OnlineLearner.

:class:`BaselineLearner` wraps a :class:`StreamingBaseline` so that anything written against the learner
(the live loop's ``Learner`` port, the model contract tests) can run a baseline too. It keeps one baseline
row per series, keyed by (store, sku), so the panel may reorder, drop or add series between calls.

``learn(history, first_seen, stores, skus, t, bucket_seconds)`` feeds the baseline the units of every bucket
it has not learned yet, up to ``t`` (the first call replays the whole history it is given, to warm up):
NaN before a series' ``first_seen``, for a non-finite value, for buckets older than the history, and for
known series absent from this panel. A bucket at or before the last learned one is a no-op (``skipped``).
``forecast(...)`` at the bucket last learned returns :class:`~tidecast.models.learner.Forecast` of the rows
given, float32: the baseline's quantiles ``[S, H, Q]`` and its point forecast clipped at 0 as the mean
``[S, H]``; a series the baseline has not learned forecasts 0.

``state_dict()`` holds the counters, the series keys and, for baselines whose state is arrays and plain
values (all but river and lightgbm: ``supports_state``), the baseline state as tensors. Restoring a state
without the baseline state starts the baseline afresh: the next ``learn`` replays the history it is given.

>>> import numpy as np
>>> from tidecast.models.baselines import make_baseline
>>> learner = BaselineLearner(make_baseline("naive", season=7, horizon=2))
>>> hist = np.zeros((2, 3, 7), np.float32)
>>> hist[:, :, 0] = [[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]
>>> info = learner.learn(hist, np.array([0, 2]), ["s", "s"], ["a", "b"], t=10, bucket_seconds=86_400)
>>> info["model_version"], info["buckets"]
(1, 3)
>>> learner.forecast(hist[::-1], np.array([2, 0]), ["s", "s"], ["b", "a"], t=10, bucket_seconds=86_400).mean
array([[5., 5.],
       [3., 3.]], dtype=float32)
>>> learner.learn(hist, np.array([0, 2]), ["s", "s"], ["a", "b"], t=10, bucket_seconds=86_400)["skipped"]
True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tidecast.stream.windows import UNITS as _UNITS

from ..learner import Forecast
from .base import StreamingBaseline
from .known import KnownInputs
from .residuals import ResidualQuantiles

__all__ = ["STATE_FORMAT", "BaselineLearner"]

STATE_FORMAT = "tidecast.baseline-learner/1"


class _NotPlain(TypeError):
    """A baseline attribute that is neither an array nor a plain value."""


def _is_plain(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _plain_state(obj: object) -> dict[str, Any]:
    """``vars(obj)`` with arrays as tensors and nested residual quantiles and known inputs as dicts; _NotPlain
    otherwise."""
    out: dict[str, Any] = {}
    for key, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(value.copy())
        elif isinstance(value, ResidualQuantiles | KnownInputs):
            out[key] = _plain_state(value)
        elif _is_plain(value) or (isinstance(value, tuple) and all(_is_plain(v) for v in value)):
            out[key] = value
        else:
            raise _NotPlain(f"{type(obj).__name__}.{key} is a {type(value).__name__}")
    return out


def _load_plain_state(obj: object, state: dict[str, Any]) -> None:
    for key, value in state.items():
        current = getattr(obj, key)
        if isinstance(current, ResidualQuantiles | KnownInputs):
            _load_plain_state(current, value)
        else:
            setattr(obj, key, value.numpy().copy() if isinstance(value, torch.Tensor) else value)


class BaselineLearner:
    """A streaming baseline with the learner's interface (see the module docstring)."""

    def __init__(self, baseline: StreamingBaseline, min_history: int = 2) -> None:
        if baseline.t != 0:
            raise ValueError("wrap a fresh baseline: the adapter must see every bucket it learns")
        self.baseline = baseline
        self.min_history = int(min_history)
        self.model_version = 0
        self.last_t: int | None = None
        self._fresh = copy.deepcopy(baseline.__dict__)  # what a restore without the baseline state goes back to
        self._rows: dict[tuple[str, str], int] = {}

    @property
    def name(self) -> str:
        return self.baseline.name

    @property
    def horizon(self) -> int:
        """Buckets forecast ahead (the baseline's)."""
        return self.baseline.horizon

    @property
    def supports_state(self) -> bool:
        """Whether :meth:`state_dict` carries the baseline's own state (else only the counters)."""
        try:
            _plain_state(self.baseline)
        except _NotPlain:
            return False
        return True

    # ------------------------------------------------------------------ rows
    def _row_of(self, stores: Sequence[str], skus: Sequence[str], add: bool) -> np.ndarray:
        """Baseline row of each (store, sku); new keys get new rows when ``add``, else -1."""
        rows = self._rows
        out = np.empty(len(skus), np.int64)
        for i, key in enumerate(zip(stores, skus, strict=True)):
            row = rows.get(key)
            if row is None:
                if not add:
                    out[i] = -1
                    continue
                row = rows[key] = len(rows)
            out[i] = row
        return out

    # ----------------------------------------------------------------- learn
    def learn(
        self,
        history: np.ndarray,
        first_seen: np.ndarray,
        stores: Sequence[str],
        skus: Sequence[str],
        t: int,
        bucket_seconds: int,
    ) -> dict[str, Any]:
        """Feed the baseline every bucket after the last learned one up to ``t``; diagnostics."""
        if self.last_t is not None and t <= self.last_t:
            return self._diagnostics(t, skipped=True, buckets=0)
        units = np.asarray(history)[:, :, _UNITS].astype(float)
        seen = np.asarray(first_seen, np.int64).reshape(-1)
        if not (units.shape[0] == len(seen) == len(stores) == len(skus)):
            raise ValueError("history, first_seen, stores and skus must have one entry per series")
        rows = self._row_of(stores, skus, add=True)
        n_pos = units.shape[1]
        if self.last_t is None:  # warm up on the whole history, from the first bucket any series is active
            start = min(int(t), max(int(t) - n_pos + 1, int(seen.min()) if len(seen) else int(t)))
        else:
            start = self.last_t + 1
        for bucket in range(start, int(t) + 1):
            self.baseline.update(self._column(units, seen, rows, int(t), bucket))
        self.last_t = int(t)
        self.model_version += 1
        return self._diagnostics(t, skipped=False, buckets=int(t) - start + 1)

    def _column(self, units: np.ndarray, seen: np.ndarray, rows: np.ndarray, t: int, bucket: int) -> np.ndarray:
        """Units of ``bucket`` for every known series: NaN where unknown, before first_seen or absent."""
        column = np.full(len(self._rows), np.nan)
        pos = units.shape[1] - 1 - (t - bucket)
        if pos >= 0:
            value = units[:, pos]
            column[rows] = np.where((bucket >= seen) & np.isfinite(value), value, np.nan)
        return column

    def _diagnostics(self, t: int, *, skipped: bool, buckets: int) -> dict[str, Any]:
        return {"t": int(t), "skipped": skipped, "model_version": self.model_version, "buckets": buckets,
                "n_series": len(self._rows)}

    # -------------------------------------------------------------- forecast
    def forecast(
        self,
        history: np.ndarray,
        first_seen: np.ndarray,
        stores: Sequence[str],
        skus: Sequence[str],
        t: int,
        bucket_seconds: int,
    ) -> Forecast:
        """Quantiles ``[S, H, Q]`` and means ``[S, H]`` (float32 units) of the rows given, for ``t+1 .. t+H``."""
        if self.last_t != t:
            raise ValueError(f"forecast at bucket {t} needs bucket {t} learned first (last learned: {self.last_t})")
        b = self.baseline
        rows = self._row_of(stores, skus, add=False)
        known = np.flatnonzero(rows >= 0)
        quantiles = np.zeros((len(rows), b.horizon, len(b.quantiles)), np.float32)
        mean = np.zeros((len(rows), b.horizon), np.float32)
        if len(known):
            quantiles[known] = b.forecast(rows[known])
            mean[known] = np.maximum(b.point_forecast(rows[known]), 0.0)
        return Forecast(quantiles, mean)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Counters, series keys and (when ``supports_state``) the baseline's arrays: tensors and plain values."""
        try:
            baseline = _plain_state(self.baseline)
        except _NotPlain:
            baseline = None
        return {
            "format": STATE_FORMAT,
            "name": self.baseline.name,
            "horizon": self.baseline.horizon,
            "quantiles": list(self.baseline.quantiles),
            "counters": {"model_version": self.model_version,
                         "last_t": -1 if self.last_t is None else self.last_t,
                         "has_last_t": self.last_t is not None},
            "series": [list(key) for key in self._rows],
            "baseline": baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of the same baseline (name, horizon and quantiles must match)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} state")
        b = self.baseline
        saved = (state["name"], int(state["horizon"]), tuple(state["quantiles"]))
        if saved != (b.name, b.horizon, b.quantiles):
            raise ValueError(f"state is for {saved}, this learner wraps {(b.name, b.horizon, b.quantiles)}")
        counters = state["counters"]
        self.model_version = int(counters["model_version"])
        if state["baseline"] is None:  # no baseline state: start it afresh, the next learn warms it up
            self.baseline.__dict__.update(copy.deepcopy(self._fresh))
            self.last_t, self._rows = None, {}
            return
        _load_plain_state(self.baseline, state["baseline"])
        self.last_t = int(counters["last_t"]) if counters["has_last_t"] else None
        self._rows = {(store, sku): i for i, (store, sku) in enumerate(state["series"])}

