"""The backtest engine: history replayed through the live pipeline on a simulated clock, scored prequentially.

The rows come in event-time order, one bucket per :class:`~tidecast.stream.backtest.file_chunks.Chunk`. Each chunk
goes the live way: :meth:`PartitionIngestor.apply` (validation, dedup, lateness) on one partition
(``backtest.sales``, 0), one atomic :meth:`WindowStore.commit`, then :meth:`Forecaster.step`, which closes
every bucket the watermark has passed: read the windows, learn, forecast, publish. The sink here
(:class:`ClosedBuckets`) snapshots each close, and a :class:`Lineup` of models, at the close of bucket ``t``,

1. scores every pending forecast that targets ``t`` against the closed bucket's units (price = revenue /
   units of the bucket, for the WRMSSE weights), for every model, with :class:`~tidecast.models.metrics.Scorer`;
2. adds ``t`` to the per-series M5 scales (:class:`~tidecast.models.metrics.RunningScales`: each series'
   own history up to the origin, from its first non-zero sale);
3. updates every baseline with bucket ``t`` and asks it for ``t+1 .. t+H``;
4. issues tidecast's and every baseline's forecasts at origin ``t+1``, for every series known by then,
   unless the origin is one of the first ``warmup`` ones (learned from, not judged).

Every model is scored on the same (series, origin, step) points: the series index space is the forecaster
panel's (series in order of first appearance, new ones appended). A series the forecaster did not publish
for (no activity within the retention) counts as forecast 0 for tidecast, which is what a consumer of the
live topic sees; ``counts["unpublished"]`` says how many series-origins that was. Forecasts are kept only
until scored, so memory is bounded by series x H x H x Q per model, not by the length of the history.

At the end the partition's max event time is advanced past the last bucket (as the live idle timeout
does), so every bucket closes and is learned and scored. Checkpoints are not written (``checkpoint`` time
is then only the state snapshot). With ``workers > 0`` the baselines run in worker processes
(:class:`~tidecast.stream.backtest.workers.BaselineWorker`, fed bucket by bucket), so the forecaster and the
baselines use two cores; the same :class:`Lineup` code scores them there.

>>> import torch; torch.set_num_threads(1)
>>> from tidecast.models.learner import LearnerConfig
>>> from tidecast.stream.backtest.file_chunks import chunks_in_order
>>> from tidecast.stream.window_store import MemoryWindowStore
>>> rows = [{"event_id": f"{d}{s}", "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "sku": s,
...          "qty": d % 3 + 1} for d in range(1, 29) for s in "AB"]
>>> small = LearnerConfig(horizon=2, lags=4, aux_lags=2, scale_window=4, hidden=8, batch_size=16,
...                       replay_capacity=64, sku_buckets=64, store_buckets=8)
>>> config = BacktestConfig(horizon=2, warmup=4, baselines=("naive",), learner=small)
>>> result = Backtest(config, MemoryWindowStore()).run(chunks_in_order(rows, config.buckets))
>>> result.series, result.origins, sorted(result.models), result.models["naive"]["scored"]
(2, 23, ['naive', 'tidecast'], 90)
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tidecast.models.learner import OnlineLearner
from tidecast.stream.backtest.config import (
    DEFAULT_BASELINES,
    GC_THRESHOLDS,
    TIDECAST,
    TOPIC,
    BacktestConfig,
)
from tidecast.stream.backtest.file_chunks import Chunk, OutOfOrder, chunks_in_order, chunks_sorted
from tidecast.stream.backtest.known_series_store import KnownSeriesStore
from tidecast.stream.backtest.scoring import Lineup, Trace
from tidecast.stream.backtest.workers import BaselineWorker, split_baselines
from tidecast.stream.forecast_message import ForecastBatch
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import IngestBatch, PartitionIngestor, Record
from tidecast.stream.ports import Learner
from tidecast.stream.series_panel import SeriesPanel
from tidecast.stream.timebuckets import Buckets, season_for
from tidecast.stream.window_store import WindowStore
from tidecast.stream.windows import REVENUE, UNITS

__all__ = [
    "DEFAULT_BASELINES",
    "TIDECAST",
    "TOPIC",
    "Backtest",
    "BacktestConfig",
    "BacktestResult",
    "run_rows",
    "season_for",
]


@dataclass
class BacktestResult:
    """What a run produced; :mod:`tidecast.stream.backtest.report` turns it into JSON, tables and plots."""

    config: BacktestConfig
    series: int
    series_names: list[str]
    origins: int
    first_bucket: int | None
    last_bucket: int | None
    seconds: float
    models: dict[str, dict]
    timings: dict[str, float]
    counts: dict[str, int]
    timeline: dict[str, list[tuple[int, float]]]
    trace: Trace | None = None
    forecasts: dict[str, dict[int, np.ndarray]] | None = None


@dataclass
class Closed:
    """One bucket close as the sink saw it: units and revenue of bucket ``t`` and tidecast's forecasts."""

    t: int
    units: np.ndarray
    revenue: np.ndarray
    published: np.ndarray
    values: np.ndarray
    mean: np.ndarray


class ClosedBuckets:
    """The forecaster's sink: snapshots each close (the panel moves on at the next one)."""

    def __init__(self, buckets: Buckets, panel: Callable[[], SeriesPanel]) -> None:
        self.buckets = buckets
        self.panel = panel
        self.closed: list[Closed] = []

    def publish(self, batch: ForecastBatch, series: Sequence[str], values: np.ndarray, mean: np.ndarray) -> int:
        panel = self.panel()
        index = panel.index
        last = panel.history[:, -1]
        idx = np.fromiter((index[name] for name in series), np.int64, len(series))
        t = self.buckets.index(batch.origin_ms) - 1
        self.closed.append(
            Closed(t, last[:, UNITS].astype(np.float64), last[:, REVENUE].astype(np.float64), idx, values, mean)
        )
        return len(series)


class _NoCheckpoints:
    def load(self) -> bytes | None:
        return None

    def save(self, blob: bytes) -> None:
        pass


class Backtest:
    """Feed chunks with :meth:`feed`, then :meth:`finish`; or :meth:`run` does both (see the module docstring).

    ``store`` is the window store the ingest commits to (memory or Redis); ``learner`` defaults to a fresh
    :class:`OnlineLearner` of ``config.learner_config()``. With ``config.workers > 0`` the baselines run in
    that many worker processes; call :meth:`close` if you abandon a run before :meth:`finish`.
    """

    def __init__(self, config: BacktestConfig, store: WindowStore, learner: Learner | None = None) -> None:
        self.config = config
        self.lineup: Lineup | None = None
        self.remotes: list[BaselineWorker] = []
        groups = split_baselines(config.baselines, config.workers)
        self.local_baselines: tuple[str, ...] = tuple(groups[0])
        self.remotes = [BaselineWorker(config, group) for group in groups[1:] if group]
        self.buckets = config.buckets
        self.learner = learner if learner is not None else OnlineLearner(config.learner_config())
        self.retention = max(config.retention, self.learner.min_history)
        state = store.load_partition(TOPIC, 0)
        if state.next_offset is not None or state.max_ts_ms is not None:
            self.close()
            raise ValueError(
                f"the window store already holds {TOPIC}:0 from another run; use a fresh store (or Redis key prefix)"
            )
        self.store = KnownSeriesStore(store)
        self.ingestor = PartitionIngestor(TOPIC, 0, self.buckets, config.lateness_seconds * 1000, self.retention, state)
        self.sink = ClosedBuckets(self.buckets, lambda: self.forecaster.panel)
        forecaster_config = ForecasterConfig(
            bucket_seconds=config.bucket_seconds,
            lateness_seconds=config.lateness_seconds,
            retention=self.retention,
            quantiles=tuple(config.quantiles),
            inputs=(f"{TOPIC}:0",),
        )
        self.forecaster = Forecaster(
            forecaster_config, self.store, self.learner, self.sink, _NoCheckpoints(), lambda state: b"", lambda blob: {}
        )
        self.offset = 0
        self.first_bucket: int | None = None
        self.last_bucket: int | None = None
        self.counts: dict[str, int] = defaultdict(int)
        self.timings: dict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    def run(self, chunks: Iterable[Chunk]) -> BacktestResult:
        """Feed every chunk (timing the input read as ``input``), then finish.

        The garbage collector runs less often meanwhile (the run allocates many short-lived objects next to
        a large long-lived heap; with the default thresholds the collections cost about 15% of a run).
        """
        iterator = iter(chunks)
        thresholds = gc.get_threshold()
        gc.set_threshold(
            max(thresholds[0], GC_THRESHOLDS[0]),
            *(max(a, b) for a, b in zip(thresholds[1:], GC_THRESHOLDS[1:], strict=True)),
        )
        try:
            while True:
                started = time.perf_counter()
                chunk = next(iterator, None)
                self.timings["input"] += time.perf_counter() - started
                if chunk is None:
                    return self.finish()
                self.feed(chunk)
        finally:
            gc.set_threshold(*thresholds)
            self.close()

    def close(self) -> None:
        """Stop any worker process still running."""
        for remote in self.remotes:
            remote.stop()

    def feed(self, chunk: Chunk) -> None:
        """Ingest one bucket's rows, register its panel zeros, close what the watermark allows."""
        self.counts["rows"] += len(chunk.records) + len(chunk.zeros)
        if chunk.records:
            started = time.perf_counter()
            records = [Record(self.offset + i, value) for i, value in enumerate(chunk.records)]
            self.offset += len(records)
            batch = self.ingestor.apply(records)
            self.timings["ingest"] += time.perf_counter() - started
            self._commit(batch)
            for name, value in batch.counts.as_fields().items():
                self.counts[name] += value
            if batch.delta.rows:
                self._saw(min(b for b, _ in batch.delta.rows), max(b for b, _ in batch.delta.rows))
        if chunk.zeros:
            self._zeros(chunk)
        self._step()

    def _zeros(self, chunk: Chunk) -> None:
        started = time.perf_counter()
        open_from = self.ingestor.open_from(self.ingestor.max_ts_ms)
        late = open_from is not None and chunk.bucket < open_from
        if late:  # its bucket already closed: counted, like a late event, never silently lost
            self.counts["late_zeros"] += len(chunk.zeros)
        else:
            self.store.register(chunk.bucket, chunk.zeros)
            self.counts["panel_zeros"] += len(chunk.zeros)
            self._saw(chunk.bucket, chunk.bucket)
        self.timings["ingest"] += time.perf_counter() - started
        newest = chunk.zero_ts
        if not late and newest is not None and (self.ingestor.max_ts_ms is None or newest > self.ingestor.max_ts_ms):
            batch = self.ingestor.advance(newest, self.offset)  # observed zeros move event time too
            if batch is not None:
                self._commit(batch)

    def finish(self) -> BacktestResult:
        """Advance event time past the last bucket so that everything closes; collect the results."""
        if self.last_bucket is not None:
            end = self.buckets.end_ms(self.last_bucket) + self.config.lateness_seconds * 1000
            batch = self.ingestor.advance(end, self.offset)
            if batch is not None:
                self._commit(batch)
            self._step()
        outcomes = []
        if self.lineup is not None:
            outcomes.append(self.lineup.outcome())
            started = time.perf_counter()
            outcomes += [remote.outcome() for remote in self.remotes]
            self.timings["wait_workers"] += time.perf_counter() - started
        self.close()
        return self._result(outcomes)

    def _result(self, outcomes: list[dict]) -> BacktestResult:
        order = [TIDECAST, *self.config.baselines]
        found = {name: result for out in outcomes for name, result in out["models"].items()}
        timeline = {name: points for out in outcomes for name, points in out["timeline"].items()}
        timings = dict(self.timings)
        for out in outcomes:
            for name, seconds in out["timings"].items():
                timings[name] = timings.get(name, 0.0) + seconds
        seconds = time.perf_counter() - self.started
        timings["other"] = max(0.0, seconds - sum(timings.values()))
        if outcomes:
            self.counts["unpublished"] = outcomes[0]["unpublished"]
        issued = outcomes[0]["issued"] if outcomes else []
        last = self.last_bucket
        kept = [out["forecasts"] for out in outcomes if out["forecasts"] is not None]
        panel = self.forecaster.panel
        return BacktestResult(
            config=self.config,
            series=len(panel),
            series_names=list(panel.series),
            origins=sum(1 for origin in issued if last is not None and origin <= last),
            first_bucket=self.first_bucket,
            last_bucket=last,
            seconds=seconds,
            models={name: found[name] for name in order if name in found},
            timings=timings,
            counts=dict(self.counts),
            timeline={name: timeline[name] for name in order if name in timeline},
            trace=self.lineup.trace if self.lineup is not None else None,
            forecasts={name: f for group in kept for name, f in group.items()} if kept else None,
        )

    def _saw(self, lo: int, hi: int) -> None:
        self.first_bucket = lo if self.first_bucket is None else min(self.first_bucket, lo)
        self.last_bucket = hi if self.last_bucket is None else max(self.last_bucket, hi)

    def _commit(self, batch: IngestBatch) -> None:
        started = time.perf_counter()
        if not self.store.commit(batch):
            raise RuntimeError(
                f"the window store refused the batch at offset {batch.expected_offset}: "
                "another writer uses this partition (use a fresh store or key prefix)"
            )
        self.ingestor.adopt(batch)
        self.timings["commit"] += time.perf_counter() - started

    def _step(self) -> None:
        for report in self.forecaster.step():
            for stage, seconds in report.seconds.items():
                self.timings["windows" if stage == "read" else stage] += seconds
        for c in self.sink.closed:
            if self.lineup is None:
                self.lineup = Lineup(self.config, c.t, self.local_baselines)
                for remote in self.remotes:
                    remote.start(c.t)
            for remote in self.remotes:
                remote.close_bucket(c.t, c.units, c.revenue)
            self.lineup.close_bucket(c.t, c.units, c.revenue, (c.published, c.values, c.mean))
        self.sink.closed.clear()


def run_rows(
    open_rows: Callable[[bool], Iterable[dict | bytes]],
    config: BacktestConfig,
    new_store: Callable[[], WindowStore],
    on_sort: Callable[[OutOfOrder], None] | None = None,
) -> BacktestResult:
    """Backtest the rows ``open_rows(sorting)`` yields (a fresh iterator per call), in event-time order.

    The rows are streamed; if they turn out not to be in bucket order, that attempt is dropped (its store
    too: ``new_store`` makes the next one) and the rows are read again, sorted in memory. ``on_sort`` is
    told why, before the second read (``sorting`` is then True).

    >>> from tidecast.stream.window_store import MemoryWindowStore
    >>> rows = [{"event_id": str(d), "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "sku": "A", "qty": 1}
    ...         for d in (2, 1, 3)]
    >>> config = BacktestConfig(horizon=1, warmup=0, baselines=("naive",))
    >>> result = run_rows(lambda sorting: rows, config, MemoryWindowStore, lambda exc: print("sorting:", exc))
    sorting: row 2 is in bucket 19719, after a row of bucket 19720
    >>> result.counts["ingested"], result.counts.get("late", 0), result.last_bucket - result.first_bucket
    (3, 0, 2)
    """
    try:
        return Backtest(config, new_store()).run(chunks_in_order(open_rows(False), config.buckets))
    except OutOfOrder as exc:
        if on_sort is not None:
            on_sort(exc)
    return Backtest(config, new_store()).run(chunks_sorted(open_rows(True), config.buckets))
