"""The backtest forecaster's sink: :class:`ClosedBuckets` snapshots each bucket close for the scoring.

The live forecaster publishes to Kafka; in the backtest it publishes here. Each publish is one close of
bucket ``t``: the panel's last column (units and revenue of ``t`` for every series) and tidecast's forecasts
for the series it published, as rows of the panel (the index space every model is scored in). The panel moves
on at the next close, so the snapshot is taken now; the engine then hands each :class:`Closed` to the scoring.

>>> import numpy as np
>>> from tidecast.stream.forecast_message import ForecastBatch
>>> from tidecast.stream.series_panel import SeriesPanel
>>> from tidecast.stream.timebuckets import Buckets
>>> buckets, panel = Buckets(86_400), SeriesPanel(2)
>>> panel.push(5, {"all:B": [3, 1, 6.0, 0, 0, 0, 0], "all:A": [1, 1, 2.0, 0, 0, 0, 0]})
>>> sink = ClosedBuckets(buckets, lambda: panel)
>>> batch = ForecastBatch(86_400, buckets.start_ms(6), (0.5,), model_version=1, issued_at_ms=0)
>>> sink.publish(batch, ["all:B"], np.ones((1, 1, 1)), np.ones((1, 1)))
1
>>> c = sink.closed[0]
>>> c.t, c.units.tolist(), c.revenue.tolist(), c.published.tolist()
(5, [1.0, 3.0], [2.0, 6.0], [1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.series_panel import SeriesPanel
from tidecast.stream.stock_targets import StockTargets
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.windows import REVENUE, UNITS


@dataclass
class Closed:
    """One bucket close as the sink saw it: units and revenue of bucket ``t`` [S] and tidecast's forecasts
    (``published`` panel rows, quantiles ``values`` [n, H, Q], means ``mean`` [n, H]); with ``--known``, the
    plans of ``t+1 .. t+H`` known then, float32 [S, H, 8], for the baselines."""

    t: int
    units: np.ndarray
    revenue: np.ndarray
    published: np.ndarray
    values: np.ndarray
    mean: np.ndarray
    plans: np.ndarray | None = None
    lead: np.ndarray | None = None
    """tidecast's lead-time quantiles [n, H, Q] of the published rows, when its learner makes them (issue 12)."""


class ClosedBuckets:
    """The forecaster's sink: snapshots each close (the panel moves on at the next one) into :attr:`closed`."""

    def __init__(self, buckets: Buckets, panel: Callable[[], SeriesPanel],
                 plans: Callable[[int], np.ndarray | None] | None = None) -> None:
        self.buckets = buckets
        self.panel = panel
        self.plans = plans  # the plans of t+1 .. t+H at close t (the panel's rows), for the baselines
        self.closed: list[Closed] = []

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray,
                plans: Sequence[str | None] | None = None, lead: np.ndarray | None = None,
                targets: StockTargets | None = None, explanations: Sequence[dict] | None = None) -> int:
        panel = self.panel()
        index = panel.index
        last = panel.history[:, -1]
        idx = np.fromiter((index[name] for name in series), np.int64, len(series))
        t = self.buckets.index(batch.origin_ms) - 1
        self.closed.append(
            Closed(t, last[:, UNITS].astype(np.float64), last[:, REVENUE].astype(np.float64), idx, values, mean,
                   None if self.plans is None else self.plans(t), _copy(lead))
        )
        return len(series)


def _copy(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else array.copy()
