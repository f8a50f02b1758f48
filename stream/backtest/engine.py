"""The backtest engine: history replayed through the live pipeline on a simulated clock, scored prequentially.

The rows come in event-time order, one bucket per :class:`~tidecast.stream.backtest.file_chunks.Chunk`. Each
chunk goes the live way: :meth:`PartitionIngestor.apply` (validation, dedup, lateness) on one partition
(``backtest.sales``, 0), one atomic :meth:`WindowStore.commit`, then :meth:`Forecaster.step`, which closes
every bucket the watermark has passed: read the windows, learn, forecast, publish. The sink here
(:class:`~tidecast.stream.backtest.closed_buckets.ClosedBuckets`) snapshots each close, and a
:class:`~tidecast.stream.backtest.scoring.Lineup` of models, at the close of bucket ``t``,

1. scores every pending forecast that targets ``t`` against the closed bucket's units, for every model,
   with :class:`~tidecast.models.metrics.Scorer` (an origin's metrics are computed once its H buckets closed);
2. adds ``t`` to the per-series M5 scales (:class:`~tidecast.models.metrics.RunningScales`: each series'
   own history up to the origin, from its first non-zero sale) and to the sales of the last
   ``weight_window`` buckets that weigh the series in WRMSSE and WSPL
   (:class:`~tidecast.models.weights.RunningSales`: revenue, or units without prices);
3. updates every baseline with bucket ``t`` and asks it for ``t+1 .. t+H``;
4. issues tidecast's and every baseline's forecasts at origin ``t+1``, for every series known by then,
   unless the origin is one of the first ``warmup`` ones (learned from, not judged).

Every model is scored on the same (series, origin, step) points: the series index space is the forecaster
panel's (series in order of first appearance, new ones appended). A series the forecaster did not publish
for (no activity within the retention) counts as forecast 0 for tidecast, which is what a consumer of the
live topic sees; ``counts["unpublished"]`` says how many series-origins that was. Forecasts are kept only
until scored, so memory is bounded by series x H x H x Q per model, not by the length of the history.

At the end the partition's max event time is advanced past the last bucket (as the live idle timeout
does), so every bucket closes and is learned and scored. Checkpoints go to a
:class:`~tidecast.stream.ports.MemoryCheckpoints` and are not serialised (``checkpoint`` time is then only
the state snapshot). With ``workers > 0`` the baselines run in worker processes
(:class:`~tidecast.stream.backtest.workers.BaselineWorker`, fed bucket by bucket), so the forecaster and the
baselines use two cores; the same :class:`~tidecast.stream.backtest.scoring.Lineup` code scores them there.
:func:`~tidecast.stream.backtest.result.assemble_result` merges the lineups' outcomes into the
:class:`~tidecast.stream.backtest.result.BacktestResult`.

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
(2, 22, ['naive', 'tidecast'], 88)
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np

from tidecast.models.lead_time_coverage import LeadTimeCoverage
from tidecast.models.learner import OnlineLearner
from tidecast.stream.backtest.closed_buckets import Closed, ClosedBuckets
from tidecast.stream.backtest.config import GC_THRESHOLDS, PLANS_TOPIC, TOPIC, BacktestConfig
from tidecast.stream.backtest.file_chunks import Chunk, OutOfOrder, chunks_in_order, chunks_sorted
from tidecast.stream.backtest.forecast_file import ForecastRows, merge_parts, part_path
from tidecast.stream.backtest.forecast_recorder import record
from tidecast.stream.backtest.known_plans import with_plans
from tidecast.stream.backtest.known_series_store import KnownSeriesStore
from tidecast.stream.backtest.rejects import TooManyRejected
from tidecast.stream.backtest.result import BacktestResult, assemble_result
from tidecast.stream.backtest.scoring import Lineup
from tidecast.stream.backtest.workers import BaselineWorker, split_baselines
from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.ingest import IngestBatch, PartitionIngestor, PartitionState, Record
from tidecast.stream.plan_history import resolve
from tidecast.stream.ports import Learner, MemoryCheckpoints
from tidecast.stream.rejects import RejectTally
from tidecast.stream.sharded_learner import ShardedLearner
from tidecast.stream.window_store import WindowStore


class Backtest:
    """Feed chunks with :meth:`feed`, then :meth:`finish`; or :meth:`run` does both (see the module docstring).

    ``store`` is the window store the ingest commits to (memory or Redis); ``learner`` defaults to a fresh
    :class:`OnlineLearner` of ``config.learner_config()``. With ``config.workers > 0`` the baselines run in
    that many worker processes; call :meth:`stop_workers` if you abandon a run before :meth:`finish`.

    Every reject's reason is tallied (:attr:`rejects`). With ``config.max_rejected``, :meth:`finish` raises
    :class:`~tidecast.stream.backtest.rejects.TooManyRejected` when a larger share of the rows was rejected;
    given ``total_rows`` (an upper bound of the input's rows, such as its line count), :meth:`feed` raises it
    as soon as the rejects alone exceed that share of ``total_rows``, which the end would find too.
    """

    def __init__(
        self, config: BacktestConfig, store: WindowStore, learner: Learner | None = None, total_rows: int | None = None
    ) -> None:
        self.config = config
        self.total_rows = total_rows
        self.rejects = RejectTally()
        self.buckets = config.buckets
        self.lineup: Lineup | None = None
        groups = split_baselines(config.baselines, config.workers)
        self.local_baselines: tuple[str, ...] = tuple(groups[0])
        # started before the learner is built or any input read: see BaselineWorker
        self.baseline_workers = [
            BaselineWorker(config, group, number) for number, group in enumerate([g for g in groups[1:] if g], 1)
        ]
        self.rows: ForecastRows | None = None
        """This process's rows of ``config.forecasts`` (opened at the first close)."""
        self._series_sent = 0
        self.learner = learner if learner is not None else _learner(config)
        self.retention = max(config.retention, self.learner.min_history)
        state = self._unused_partition(store)
        self.store = KnownSeriesStore(store)
        self.ingestor = PartitionIngestor(TOPIC, 0, self.buckets, config.lateness_seconds * 1000, self.retention, state,
                                          bounds=config.bounds)
        self.plan_ingestor = PartitionIngestor(PLANS_TOPIC, 0, self.buckets, config.lateness_seconds * 1000,
                                               self.retention, store.load_partition(PLANS_TOPIC, 0),
                                               bounds=config.bounds)
        self.plan_offset = 0
        self.sink = ClosedBuckets(self.buckets, lambda: self.forecaster.panel,
                                  self._plans_ahead if config.known else None)
        self.lead_coverage = LeadTimeCoverage(config.horizon, config.learner_config().lead_quantiles)
        self.forecaster = self._forecaster()
        self.offset = 0
        self.first_bucket: int | None = None
        self.last_bucket: int | None = None
        self.counts: dict[str, int] = defaultdict(int)
        self.timings: dict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    def _unused_partition(self, store: WindowStore) -> PartitionState:
        """The partition's state in ``store``, refused (workers stopped) if another run already wrote to it."""
        state = store.load_partition(TOPIC, 0)
        if state.next_offset is not None or state.max_ts_ms is not None:
            self.stop_workers()
            raise ValueError(
                f"the window store already holds {TOPIC}:0 from another run; use a fresh store (or Redis key prefix)"
            )
        return state

    def _forecaster(self) -> Forecaster:
        """The live forecaster on the one input partition, publishing to :attr:`sink`; checkpoints unserialised."""
        config = self.config
        forecaster_config = ForecasterConfig(
            bucket_seconds=config.bucket_seconds,
            lateness_seconds=config.lateness_seconds,
            retention=self.retention,
            quantiles=tuple(config.quantiles),
            inputs=(f"{TOPIC}:0",),
        )
        def skip_state(state: dict) -> bytes:  # the state is built (timed as "checkpoint"), never serialised
            return b""

        def no_state(blob: bytes) -> dict:
            return {}

        return Forecaster(forecaster_config, self.store, self.learner, self.sink, MemoryCheckpoints(), skip_state,
                          no_state)

    def run(self, chunks: Iterable[Chunk]) -> BacktestResult:
        """Feed every chunk (timing the input read as ``input``), then finish; the workers stop either way."""
        iterator = iter(chunks)
        try:
            with _fewer_collections():
                while True:
                    started = time.perf_counter()
                    chunk = next(iterator, None)
                    self.timings["input"] += time.perf_counter() - started
                    if chunk is None:
                        return self.finish()
                    self.feed(chunk)
        finally:
            self.stop_workers()
            self._drop_parts()

    def stop_workers(self) -> None:
        """Stop any baseline worker process still running."""
        for worker in self.baseline_workers:
            worker.stop()

    def feed(self, chunk: Chunk) -> None:
        """Ingest one bucket's rows, register its panel zeros, close what the watermark allows."""
        self.counts["rows"] += len(chunk.records) + len(chunk.zeros)
        if chunk.closed:
            self.counts["closed"] += chunk.closed
        if chunk.records:
            self._ingest(chunk.records)
        if chunk.zeros:
            self._register_zeros(chunk)
        limit = self.config.max_rejected
        if limit is not None and self.total_rows and self.rejects.total > limit * self.total_rows:
            raise TooManyRejected(self.rejects, self.counts["rows"], max(self.total_rows, self.counts["rows"]), limit)
        self._step()

    def finish(self) -> BacktestResult:
        """Advance event time past the last bucket so that everything closes; collect the results.

        Raises :class:`TooManyRejected` first when more than ``config.max_rejected`` of the rows were rejected.
        """
        limit, rows = self.config.max_rejected, self.counts["rows"]
        if limit is not None and self.rejects.total > limit * rows:
            raise TooManyRejected(self.rejects, rows, rows, limit)
        if self.last_bucket is not None:
            self._advance(self.buckets.end_ms(self.last_bucket) + self.config.lateness_seconds * 1000)
            self._step()
        outcomes = self._outcomes()
        self.stop_workers()
        self._close_forecasts()
        result = assemble_result(
            self.config,
            outcomes,
            self.forecaster.panel,
            (self.first_bucket, self.last_bucket),
            self.counts,
            self.timings,
            self.started,
            self.lineup.trace if self.lineup is not None else None,
        )
        result.rejects = self.rejects
        if self.lead_coverage.counted.any():
            result.lead_time = self.lead_coverage.as_json()
        return result

    def _ingest(self, values: list[bytes]) -> None:
        """Validate, deduplicate and window the encoded events the live way; one atomic commit. Plan events go
        first, to the plans partition (as ``<prefix>plans`` live), counted apart (``plans_*``)."""
        plans = [value for value in values if _PLAN in value]
        if plans:
            self._ingest_plans(plans)
            values = [value for value in values if _PLAN not in value]
            if not values:
                return
        started = time.perf_counter()
        records = [Record(self.offset + i, value) for i, value in enumerate(values)]
        self.offset += len(records)
        batch = self.ingestor.apply(records)
        self.timings["ingest"] += time.perf_counter() - started
        self._commit(batch)
        for name, value in batch.counts.as_fields().items():
            self.counts[name] += value
        add = self.rejects.add
        for reject in batch.rejects:
            add(reject.reason)
        if batch.delta.rows:
            self._saw(min(b for b, _ in batch.delta.rows), max(b for b, _ in batch.delta.rows))

    def _ingest_plans(self, values: list[bytes]) -> None:
        """Ingest plan events to the plans partition, one atomic commit; counted as ``plans_<counter>`` (a plan's
        reject repeats its row's, which the row's own reject tallies already)."""
        started = time.perf_counter()
        records = [Record(self.plan_offset + i, value) for i, value in enumerate(values)]
        self.plan_offset += len(records)
        batch = self.plan_ingestor.apply(records)
        self.timings["ingest"] += time.perf_counter() - started
        self._commit(batch, self.plan_ingestor)
        self.counts["rows"] -= len(values)  # plans are not rows of the file (their rows are counted)
        self.counts["plans"] += len(values)
        for name, value in batch.counts.as_fields().items():
            if value:
                self.counts[f"plans_{name}"] += value

    def _register_zeros(self, chunk: Chunk) -> None:
        """Register the chunk's panel zeros for its bucket; like events, they move event time forward.

        A zero whose bucket already closed is counted as ``late_zeros``, like a late event: never silently lost.
        """
        started = time.perf_counter()
        open_from = self.ingestor.open_from(self.ingestor.max_ts_ms)
        late = open_from is not None and chunk.bucket < open_from
        if late:
            self.counts["late_zeros"] += len(chunk.zeros)
        else:
            self.store.register(chunk.bucket, chunk.zeros)
            self.counts["panel_zeros"] += len(chunk.zeros)
            self._saw(chunk.bucket, chunk.bucket)
        self.timings["ingest"] += time.perf_counter() - started
        newest = chunk.zero_ts
        if not late and newest is not None and (self.ingestor.max_ts_ms is None or newest > self.ingestor.max_ts_ms):
            self._advance(newest)

    def _advance(self, ts_ms: int) -> None:
        """Move the partition's max event time to ``ts_ms`` (committed), as an idle timeout does live."""
        batch = self.ingestor.advance(ts_ms, self.offset)
        if batch is not None:
            self._commit(batch)

    def _saw(self, lo: int, hi: int) -> None:
        self.first_bucket = lo if self.first_bucket is None else min(self.first_bucket, lo)
        self.last_bucket = hi if self.last_bucket is None else max(self.last_bucket, hi)

    def _commit(self, batch: IngestBatch, ingestor: PartitionIngestor | None = None) -> None:
        started = time.perf_counter()
        if not self.store.commit(batch):
            raise RuntimeError(
                f"the window store refused the batch at offset {batch.expected_offset}: "
                "another writer uses this partition (use a fresh store or key prefix)"
            )
        (ingestor or self.ingestor).adopt(batch)
        self.timings["commit"] += time.perf_counter() - started

    def _step(self) -> None:
        """Close every bucket the watermark allows (the forecaster's stages timed), then score each close."""
        for report in self.forecaster.step():
            for stage, seconds in report.seconds.items():
                self.timings["windows" if stage == "read" else stage] += seconds
        for closed in self.sink.closed:
            self._score(closed)
        self.sink.closed.clear()

    def _score(self, closed: Closed) -> None:
        """Hand one close to every lineup (the first close starts them); the workers score while this one does."""
        if self.lineup is None:
            self.lineup = Lineup(self.config, closed.t, self.local_baselines)
            if self.config.forecasts is not None:
                self.rows = ForecastRows(self.config.forecasts, self.config.quantiles, self.buckets)
                record(self.lineup, self.rows)
            for worker in self.baseline_workers:
                worker.start(closed.t)
        series = self.forecaster.panel.series
        new_series = series[self._series_sent :] if self.config.forecasts is not None else []
        self._series_sent += len(new_series)
        if self.rows is not None:
            self.rows.names.extend(new_series)
        for worker in self.baseline_workers:
            worker.close_bucket(closed.t, closed.units, closed.revenue, new_series, closed.plans)
        self.lineup.close_bucket(
            closed.t, closed.units, closed.revenue, (closed.published, closed.values, closed.mean), closed.plans,
            closed.lead,
        )
        started = time.perf_counter()
        self._score_lead_time(closed)
        self.timings["lead_time"] += time.perf_counter() - started

    def _score_lead_time(self, closed: Closed) -> None:
        """The sums of lead-time demand against tidecast's lead-time quantiles: every close advances the sums;
        an origin past the warm-up issues its quantiles."""
        self.lead_coverage.close(closed.t, closed.units)
        scored_from = self.lineup.first_scored if self.lineup is not None else closed.t + 2
        if closed.lead is not None and closed.t + 1 >= scored_from:  # the origin is t + 1
            self.lead_coverage.forecast(closed.t, closed.published, closed.lead)

    def _plans_ahead(self, t: int) -> np.ndarray:
        """The plans of ``t+1 .. t+H`` known at close ``t``, for the panel's series: the forecaster's own (it
        read them for its learner), else read from the store."""
        started = time.perf_counter()
        history, series = self.forecaster.plans, self.forecaster.panel.series
        if history is not None and history.t == t:
            plans = history.window()[:, history.length:].copy()
        else:
            plans = resolve(self.store.read_plans(t + 1, t + self.config.horizon), series, t + 1,
                            self.config.horizon)[0]
        self.timings["plans_baselines"] += time.perf_counter() - started
        return plans

    def _close_forecasts(self) -> None:
        """Close ``config.forecasts`` (a header only if nothing was scored) and append the workers' parts."""
        path = self.config.forecasts
        if path is None:
            return
        started = time.perf_counter()
        if self.rows is None:
            self.rows = ForecastRows(path, self.config.quantiles, self.buckets)
        self.rows.close()
        merge_parts(path, [part_path(path, n) for n in range(1, len(self.baseline_workers) + 1)])
        self.timings["forecasts_file"] += time.perf_counter() - started

    def _drop_parts(self) -> None:
        """After a run that did not finish: close this process's rows, delete the workers' parts (if any)."""
        path = self.config.forecasts
        if path is None:
            return
        if self.rows is not None:
            self.rows.close()
        for n in range(1, len(self.baseline_workers) + 1):
            part_path(path, n).unlink(missing_ok=True)

    def _outcomes(self) -> list[dict]:
        """Every lineup's outcome, this process's first (none if no bucket ever closed)."""
        if self.lineup is None:
            return []
        outcomes = [self.lineup.outcome()]
        started = time.perf_counter()
        outcomes += [worker.outcome() for worker in self.baseline_workers]
        self.timings["wait_workers"] += time.perf_counter() - started
        return outcomes


_PLAN = b'"type":"plan"'
"""How an encoded plan event shows (orjson escapes quotes inside strings, so no other value matches)."""


def _learner(config: BacktestConfig) -> Learner:
    """The live model, or one per shard when the config replays sharded forecasters."""
    if config.shards == 1:
        return OnlineLearner(config.learner_config())
    return ShardedLearner([OnlineLearner(config.learner_config()) for _ in range(config.shards)], config.partitions)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the garbage collector less often meanwhile (at least :data:`GC_THRESHOLDS`).

    A run allocates many short-lived objects next to a large long-lived heap; with the default thresholds the
    collections cost about 15% of a run.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(
        max(thresholds[0], GC_THRESHOLDS[0]),
        *(max(a, b) for a, b in zip(thresholds[1:], GC_THRESHOLDS[1:], strict=True)),
    )
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def run_rows(
    open_rows: Callable[[bool], Iterable[dict | bytes]],
    config: BacktestConfig,
    new_store: Callable[[], WindowStore],
    on_sort: Callable[[OutOfOrder], None] | None = None,
    total_rows: int | None = None,
) -> BacktestResult:
    """Backtest the rows ``open_rows(sorting)`` yields (a fresh iterator per call), in event-time order.

    The rows are streamed; if they turn out not to be in bucket order, that attempt is dropped (its store
    too: ``new_store`` makes the next one) and the rows are read again, sorted in memory. ``on_sort`` is
    told why, before the second read (``sorting`` is then True). ``total_rows`` (an upper bound of the rows,
    or None) lets a run with ``config.max_rejected`` stop early (see :class:`Backtest`).

    >>> from tidecast.stream.window_store import MemoryWindowStore
    >>> rows = [{"event_id": str(d), "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "sku": "A", "qty": 1}
    ...         for d in (2, 1, 3)]
    >>> config = BacktestConfig(horizon=1, warmup=0, baselines=("naive",))
    >>> result = run_rows(lambda sorting: rows, config, MemoryWindowStore, lambda exc: print("sorting:", exc))
    sorting: row 2 is in bucket 19719, after a row of bucket 19720
    >>> result.counts["ingested"], result.counts.get("late", 0), result.last_bucket - result.first_bucket
    (3, 0, 2)
    """
    def rows(sorting: bool) -> Iterable[dict | bytes]:
        if not config.known:
            return open_rows(sorting)
        return with_plans(open_rows(sorting), config.known, config.buckets, config.horizon)

    try:
        backtest = Backtest(config, new_store(), total_rows=total_rows)
        return backtest.run(chunks_in_order(rows(False), config.buckets))
    except OutOfOrder as exc:
        if on_sort is not None:
            on_sort(exc)
    return Backtest(config, new_store(), total_rows=total_rows).run(chunks_sorted(rows(True), config.buckets))
