"""Every scored point to :class:`~tidecast.stream.backtest.forecast_file.ForecastRows`, seen from the scorers.

:func:`record` wraps each :class:`~tidecast.models.metrics.Scorer` of a
:class:`~tidecast.stream.backtest.scoring.Lineup` in a :class:`RecordingScorer`: what is issued to the scorer
is kept until its target bucket is observed, and an origin's rows are written with their actuals once all its H
target buckets are observed: the file holds exactly the points the metrics are computed from (only complete
origins are scored; the warm-up origins are never issued, so never written). The kept
forecasts are those the scorer keeps too (series x H x H x Q per model), released as they are written.

>>> import numpy as np
>>> from tidecast.models.metrics import Scorer
>>> class Print:
...     def write(self, model, origin, step, values, mean, actual, series=None):
...         print(model, origin, step, values.tolist(), mean.tolist(), actual.tolist())
>>> scorer = RecordingScorer(Scorer(2, (0.1, 0.5, 0.9)), "naive", Print())
>>> scorer.issue(5, np.array([[[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]]), np.ones(1), np.ones(1))
>>> scorer.observe(5, np.array([4.0, 9.0]))
1
>>> scorer.observe(6, np.array([3.0, 9.0]))
naive 5 1 [[0.0, 1.0, 2.0]] [1.0] [4.0]
naive 5 2 [[1.0, 2.0, 3.0]] [2.0] [3.0]
1
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

import numpy as np

from tidecast.models.quantiles import median_index


class RowSink(Protocol):
    """Where the rows go (:class:`~tidecast.stream.backtest.forecast_file.ForecastRows`)."""

    def write(
        self,
        model: str,
        origin: int,
        step: int,
        values: np.ndarray,
        mean: np.ndarray,
        actual: np.ndarray,
        series: np.ndarray | None = None,
    ) -> None: ...


class RecordingScorer:
    """A scorer that also hands every point it scores, with its actual, to ``sink``; otherwise the scorer."""

    def __init__(self, scorer: Any, model: str, sink: RowSink) -> None:
        self.scorer, self.model, self.sink = scorer, model, sink
        self.mid = median_index(tuple(scorer.quantiles)) if hasattr(scorer, "quantiles") else None
        self.pending: dict[int, list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray | None]]] = defaultdict(list)
        self.observed: dict[int, list[tuple]] = defaultdict(list)  # per origin: its rows, written once complete
        self.horizon: dict[int, int] = {}

    def issue(
        self,
        origin: int,
        forecasts: np.ndarray,
        mae_scale: np.ndarray,
        mse_scale: np.ndarray,
        series_idx: np.ndarray | None = None,
        means: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        """The scorer's ``issue``; the forecasts are kept until their targets are observed."""
        self.scorer.issue(origin, forecasts, mae_scale, mse_scale, series_idx, means=means, weights=weights)
        values = np.array(forecasts, dtype=np.float64)  # a copy: the caller may reuse its array
        mid = self.mid if self.mid is not None else values.shape[2] // 2
        mean = np.array(means, dtype=np.float64) if means is not None else values[:, :, mid]
        idx = None if series_idx is None else np.asarray(series_idx)
        self.horizon[origin] = values.shape[1]
        for h in range(values.shape[1]):
            self.pending[origin + h].append((origin, h + 1, values[:, h, :], mean[:, h], idx))

    def observe(self, t: int, actuals: np.ndarray) -> int:
        """The scorer's ``observe``; writes every kept point that targets ``t`` (NaN actuals left out, as scored)."""
        scored = self.scorer.observe(t, actuals)
        a = np.asarray(actuals, dtype=np.float64).ravel()
        for origin, step, values, mean, idx in self.pending.pop(int(t), []):
            actual = a[: mean.size] if idx is None else a[idx]
            known = ~np.isnan(actual)
            if idx is None and known.all():
                row: tuple = (self.model, origin, step, values, mean, actual)
            else:
                rows = np.arange(mean.size) if idx is None else idx
                row = (self.model, origin, step, values[known], mean[known], actual[known], rows[known])
            done = self.observed[origin]
            done.append(row)
            if len(done) == self.horizon[origin]:  # complete: the metrics score this origin, so the file has it
                for complete in self.observed.pop(origin):
                    self.sink.write(*complete)
                del self.horizon[origin]
        return scored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)


def record(lineup: Any, sink: RowSink) -> None:
    """Wrap every scorer of ``lineup`` so that its scored points go to ``sink`` as well."""
    lineup.scorers = {name: RecordingScorer(scorer, name, sink) for name, scorer in lineup.scorers.items()}
