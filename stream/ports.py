"""The small interfaces the forecasting loop talks through; each has an in-memory implementation here.

>>> sink = MemorySink()
>>> checkpoints = MemoryCheckpoints(); checkpoints.save(b"x"); checkpoints.load()
b'x'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.stock_targets import StockTargets


class ForecastSink(Protocol):
    """Where forecasts go: the Kafka publisher live, a list in tests and the backtest."""

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                plans: Sequence[str | None] | None = None, lead: np.ndarray | None = None,
                targets: StockTargets | None = None, explanations: Sequence[dict] | None = None) -> int:
        """Send one close: quantiles ``values`` [S, H, Q] and means ``mean`` [S, H] of ``series``; ``plans``:
        the hash of the plan each forecast assumed (None: no plan), given by a forecaster whose learner takes
        plans; ``lead``: the lead-time quantiles [S, H, QL] (of the demand summed over steps 1..L), given by a
        forecaster whose learner makes them; ``targets``: the series' stock targets, given by a forecaster with
        a policy (:mod:`tidecast.stream.stock_targets`, :mod:`tidecast.stream.target_message`);
        ``explanations``: each forecast's ``explain`` field, given by a forecaster that explains."""
        ...


class CheckpointStore(Protocol):
    def load(self) -> bytes | None: ...

    def save(self, blob: bytes) -> None: ...


class Learner(Protocol):
    """What the loop needs of a model (:class:`tidecast.models.learner.OnlineLearner` fits). A learner may also
    have ``remember`` (the arguments of ``forecast``, nothing returned): the loop calls it, instead of
    ``forecast``, for a close it learns from but does not publish (a live catch-up), so a model that
    calibrates on what it published sees that close as if it had been."""

    model_version: int

    @property
    def min_history(self) -> int:
        """History length that uses every input (shorter histories are left-padded as pre-launch)."""
        ...

    @property
    def horizon(self) -> int:
        """Buckets forecast ahead."""
        ...

    def forecast(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
                 t: int, bucket_seconds: int) -> tuple[np.ndarray, np.ndarray]:
        """(quantiles [S, H, Q], means [S, H]) in units. A learner with a true ``plan_inputs`` attribute also
        takes ``plans=`` float32 [S, L + H, 8]: the plans of the history's buckets and of the H after ``t``
        (:mod:`tidecast.stream.plan_history`), in ``forecast`` and in ``learn``."""
        ...

    def learn(self, history: np.ndarray, first_seen: np.ndarray, stores: Sequence[str], skus: Sequence[str],
              t: int, bucket_seconds: int) -> dict[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class MemorySink:
    """Keeps every published batch: ``(batch, series, values, mean)``, and per batch the plan hashes
    (:attr:`plans`), the lead-time quantiles (:attr:`leads`), the stock targets (:attr:`targets`) and the
    explanations (:attr:`explanations`)."""

    def __init__(self) -> None:
        self.published: list[tuple[ForecastBatch, list[str], np.ndarray, np.ndarray]] = []
        self.plans: list[list[str | None] | None] = []
        self.leads: list[np.ndarray | None] = []
        self.targets: list[StockTargets | None] = []
        self.explanations: list[list[dict] | None] = []

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                plans: Sequence[str | None] | None = None, lead: np.ndarray | None = None,
                targets: StockTargets | None = None, explanations: Sequence[dict] | None = None) -> int:
        self.published.append((batch, list(series), values.copy(), mean.copy()))
        self.plans.append(None if plans is None else list(plans))
        self.leads.append(None if lead is None else lead.copy())
        self.targets.append(targets)
        self.explanations.append(None if explanations is None else list(explanations))
        return len(series)


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.blob: bytes | None = None
        self.saves = 0

    def load(self) -> bytes | None:
        return self.blob

    def save(self, blob: bytes) -> None:
        self.blob = blob
        self.saves += 1
