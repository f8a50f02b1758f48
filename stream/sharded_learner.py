"""N forecaster shards' models in one learner, so a backtest can measure what sharding costs in accuracy.

Live, ``tidecast forecast --shard I/N`` runs N forecasters, each with its own model trained on the series of
its partitions only (:mod:`tidecast.stream.shards`). They close the same buckets (each waits for every
partition's watermark), so one backtest can replay them exactly: :class:`ShardedLearner` gives every series to
the model of the shard its key lands in (Kafka's default partitioner over ``partitions`` partitions, then
``partition % N``), and each model learns from, forecasts and remembers only its own rows, in their order
in the panel, just as the shard's forecaster would. ``tidecast backtest --shards N`` uses it.

>>> import numpy as np
>>> class Last:  # a tiny learner: forecasts each series' last bucket, counts the rows it was shown
...     model_version, min_history, horizon = 0, 2, 1
...     def __init__(self): self.rows = 0
...     def learn(self, history, *rest): self.rows += len(history); return {"loss": 1.0}
...     def forecast(self, history, *rest): return history[:, -1:, :1], history[:, -1:, 0]
...     def state_dict(self): return {"rows": self.rows}
...     def load_state_dict(self, state): self.rows = state["rows"]
>>> learner = ShardedLearner([Last(), Last()], partitions=12)
>>> history = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
>>> stores, skus = ["s1", "s1", "s2"], ["A", "B", "A"]
>>> [learner.shard_of(st, sk) for st, sk in zip(stores, skus)]
[0, 1, 1]
>>> learner.learn(history, np.zeros(3), stores, skus, 5, 86_400)["shards"]
2
>>> [shard.rows for shard in learner.shards]
[1, 2]
>>> learner.forecast(history, np.zeros(3), stores, skus, 5, 86_400)[1].ravel().tolist()
[2.0, 6.0, 10.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tidecast.stream.events import series_id
from tidecast.stream.ports import Learner
from tidecast.stream.shards import Shard

STATE_FORMAT = "tidecast.sharded-learner/1"


class ShardedLearner:
    """One :class:`~tidecast.stream.ports.Learner` per shard, each given the rows of its own series (see the
    module docstring). ``partitions``: the input topics' partition count (``TIDECAST_PARTITIONS``)."""

    def __init__(self, shards: Sequence[Learner], partitions: int) -> None:
        if len(shards) < 1 or partitions < len(shards):
            raise ValueError(f"{len(shards)} shards need at least as many partitions, got {partitions}")
        self.shards: list[Any] = list(shards)  # each a Learner; Any: their plan keywords are optional
        self.partitions = partitions
        self._shard_of: dict[tuple[str, str], int] = {}

    last_lead: np.ndarray | None = None
    """The shards' lead-time quantiles of the last forecast, in its rows' order (None when they make none)."""

    def shard_of(self, store: str, sku: str) -> int:
        """The shard (index) whose forecaster publishes series ``store:sku``."""
        key = (store, sku)
        found = self._shard_of.get(key)
        if found is None:
            found = self._shard_of[key] = Shard(0, len(self.shards)).of_series(series_id(store, sku), self.partitions)
        return found

    @property
    def model_version(self) -> int:
        """The buckets learned, summed over the shards."""
        return sum(shard.model_version for shard in self.shards)

    @model_version.setter
    def model_version(self, value: int) -> None:
        raise AttributeError("a sharded learner's version is its shards' (set theirs)")

    @property
    def min_history(self) -> int:
        return self.shards[0].min_history

    @property
    def horizon(self) -> int:
        return self.shards[0].horizon

    @property
    def plan_inputs(self) -> bool:
        return bool(getattr(self.shards[0], "plan_inputs", False))

    def learn(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
              t: int, bucket_seconds: int, **kw: Any) -> dict[str, Any]:
        """Each shard learns from its own rows; the diagnostics are the shards' averaged (counts summed)."""
        reports = [self.shards[s].learn(*args, t, bucket_seconds, **kwargs)
                   for s, _, args, kwargs in self._split(history, first_seen, stores, skus, kw)]
        return {**_merged(reports), "t": t, "shards": len(reports)}

    def forecast(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
                 t: int, bucket_seconds: int, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each shard forecasts its own rows; :attr:`last_lead` gathers their lead-time quantiles, when they
        make them."""
        values: np.ndarray | None = None
        mean: np.ndarray | None = None
        self.last_lead = None
        for s, rows, args, kwargs in self._split(history, first_seen, stores, skus, kw):
            part_values, part_mean = self.shards[s].forecast(*args, t, bucket_seconds, **kwargs)
            if values is None or mean is None:
                values = np.zeros((len(stores), *part_values.shape[1:]), dtype=part_values.dtype)
                mean = np.zeros((len(stores), *part_mean.shape[1:]), dtype=part_mean.dtype)
            values[rows], mean[rows] = part_values, part_mean
            lead = getattr(self.shards[s], "last_lead", None)
            if lead is not None:
                if self.last_lead is None:
                    self.last_lead = np.zeros((len(stores), *lead.shape[1:]), dtype=lead.dtype)
                self.last_lead[rows] = lead
        if values is None or mean is None:  # no rows at all: ask the first shard for the empty shapes
            return self.shards[0].forecast(history, first_seen, stores, skus, t, bucket_seconds, **kw)
        return values, mean

    def remember(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
                 t: int, bucket_seconds: int, **kw: Any) -> None:
        for s, _, args, kwargs in self._split(history, first_seen, stores, skus, kw):
            remember: Callable[..., None] | None = getattr(self.shards[s], "remember", None)
            if remember is not None:
                remember(*args, t, bucket_seconds, **kwargs)

    def _split(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
               kw: dict[str, Any]) -> list[tuple[int, np.ndarray, tuple, dict[str, Any]]]:
        """Per shard with rows: (shard, its rows, its (history, first_seen, stores, skus), its keywords)."""
        owner = np.fromiter((self.shard_of(store, sku) for store, sku in zip(stores, skus, strict=True)),
                            dtype=np.int64, count=len(stores))
        parts = []
        for s in range(len(self.shards)):
            rows = np.flatnonzero(owner == s)
            if len(rows):
                picked = rows.tolist()
                args = (history[rows], first_seen[rows], [stores[i] for i in picked], [skus[i] for i in picked])
                kwargs = {name: value[rows] if isinstance(value, np.ndarray) else value for name, value in kw.items()}
                parts.append((s, rows, args, kwargs))
        return parts

    def state_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "partitions": self.partitions,
                "shards": [shard.state_dict() for shard in self.shards]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT or len(state.get("shards", ())) != len(self.shards):
            raise ValueError(f"not a {STATE_FORMAT} state of {len(self.shards)} shards")
        if int(state["partitions"]) != self.partitions:
            raise ValueError(f"the state deals series over {state['partitions']} partitions, not {self.partitions}")
        for shard, shard_state in zip(self.shards, state["shards"], strict=True):
            shard.load_state_dict(shard_state)


def _merged(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers averaged over the shards that report them (NaNs left out), ints and bools summed or any-ed,
    dicts of sums (the calibration's ``published`` scores) summed key by key."""
    merged: dict[str, Any] = {}
    for key in {key for report in reports for key in report}:
        values = [report[key] for report in reports if key in report]
        if all(isinstance(v, dict) for v in values):
            merged[key] = {k: sum(v.get(k, 0) for v in values) for k in {k for v in values for k in v}}
        elif all(isinstance(v, bool) for v in values):
            merged[key] = any(values)
        elif all(isinstance(v, int) for v in values):
            merged[key] = sum(values)
        elif all(isinstance(v, (int, float)) for v in values):
            finite = [float(v) for v in values if not math.isnan(v)]
            merged[key] = sum(finite) / len(finite) if finite else math.nan
        else:
            merged[key] = values[0]
    return merged
