"""The offline backtest: history replayed through the live pipeline on a simulated clock, scored prequentially.

The folder is ``stream/backtest/`` (linked as ``tidecast/stream/backtest``, imported as
``tidecast.stream.backtest``); ``tidecast backtest`` (:mod:`tidecast.commands.backtest_cmd`) is its command
and docs/backtesting.md its guide. One module per purpose, in the order a run uses them:

* :mod:`~tidecast.stream.backtest.config`: :class:`BacktestConfig` (what to run) and the constants;
* :mod:`~tidecast.stream.backtest.file_chunks`: file rows in event-time order, one ``Chunk`` per bucket,
  panel zeros kept apart;
* :mod:`~tidecast.stream.backtest.known_series_store`: ``KnownSeriesStore``, the window store the forecaster
  reads, with the panel zeros added and new series in a fixed order;
* :mod:`~tidecast.stream.backtest.closed_buckets`: ``ClosedBuckets``, the forecaster's sink, one snapshot
  per bucket close;
* :mod:`~tidecast.stream.backtest.scoring`: ``Lineup``, every model scored at each bucket close, and
  ``Trace`` (the report's plots);
* :mod:`~tidecast.stream.backtest.workers`: ``BaselineWorker``, a lineup of baselines in a worker process,
  and ``split_baselines``;
* :mod:`~tidecast.stream.backtest.result`: ``BacktestResult`` and its assembly from the lineups' outcomes;
* :mod:`~tidecast.stream.backtest.engine`: ``Backtest`` and ``run_rows``, which wire the above (the entry
  point; it re-exports the config and the result);
* :mod:`~tidecast.stream.backtest.report`: the ``--json`` object, the Markdown tables, ``report.md`` and
  ``metrics.json``;
* :mod:`~tidecast.stream.backtest.charts`: the PNG charts (the report's plots and the demo's chart);
* :mod:`~tidecast.stream.backtest.published`: scoring of forecasts actually published (the demo).

What it may import: the stream core (``tidecast.stream``, not its adapters), ``tidecast.models``, numpy and
orjson, :mod:`multiprocessing` (workers) and matplotlib (charts, imported on use). Never kafka or redis: the
window store is injected (the command builds the Redis one). Importing this package imports nothing
(no torch); the modules that need the learner import it.

>>> from tidecast.stream.backtest.config import BacktestConfig
>>> from tidecast.stream.backtest.engine import run_rows
>>> from tidecast.stream.window_store import MemoryWindowStore
>>> rows = [{"event_id": str(d), "type": "sale", "ts": f"2024-01-{d:02d}T12:00:00+00:00", "sku": "A", "qty": d}
...         for d in range(1, 8)]
>>> config = BacktestConfig(horizon=1, warmup=2, baselines=("naive",))
>>> result = run_rows(lambda sorting: rows, config, MemoryWindowStore)
>>> result.series, result.origins, list(result.models), result.models["naive"]["mae"]
(1, 4, ['tidecast', 'naive'], 1.0)
"""
