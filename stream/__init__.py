"""The stream core: the event contract, time buckets, feature windows, the ingest state machine, the window
store port, the series panel and the forecasting loop; plus two subpackages at the edge.

Folder ``stream/`` (imported as ``tidecast.stream``). The core modules here use the standard library, numpy
and orjson; import-linter contracts in ``pyproject.toml`` fail ``make lint`` if one imports torch, river,
LightGBM, Kafka, Redis, matplotlib, a process pool or anything outside the core. At the edge:

* ``adapters/``: the Redis window store and checkpoint store, and the Kafka client settings; they import
  the core, never the reverse.
* ``backtest/``: history replayed offline through the same core, scored against the baselines; it may use
  ``tidecast.models``, multiprocessing and matplotlib, never Kafka or Redis (a Redis store is passed in).

>>> from tidecast.stream.events import validate
>>> validate(b'{"event_id": "e1", "type": "sale", "ts": 0, "sku": "A1", "qty": 2}').series
'all:A1'
"""
