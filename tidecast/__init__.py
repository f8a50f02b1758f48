"""tidecast: a streaming, online-learning demand forecaster.

Folder ``tidecast/`` is the package root and the thin front: ``cli`` and ``commands/`` (argument parsing and
printing), ``config`` (frozen settings from ``TIDECAST_*``), ``console``, ``live`` (wiring of the live jobs)
and ``infra/`` (the embedded servers). The logic lives in the top-level folders, linked in as
``tidecast.stream``, ``tidecast.models``, ``tidecast.consumers`` and ``tidecast.producers``
(``tidecast/stream -> ../stream``, ...). The front may import all of them; none of them imports the front
but ``tidecast.config`` (import-linter contracts in ``pyproject.toml``, drawn in docs/architecture.md).

>>> import tidecast.stream.events, tidecast.models.quantiles
>>> tidecast.stream.events.series_id(None, "85123A"), tidecast.models.quantiles.DEFAULT_QUANTILES
('all:85123A', (0.1, 0.5, 0.9))
"""

__version__ = "0.1.0"
