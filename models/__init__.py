"""The forecasting models: the global quantile network, its inputs and loss, the online learner and its rate
control, the quantile rules, checkpoints, metrics and the baselines. No I/O here.

Folder ``models/`` (imported as ``tidecast.models``). It may import numpy, torch, river and the stream core's
contract modules (``tidecast.stream.windows`` for the channel order, ``tidecast.stream.timebuckets`` for the
bucket origin); never Kafka, Redis, matplotlib or the front (import-linter contracts in ``pyproject.toml``).
LightGBM is imported by its baseline only when it fits. Every forecaster (:class:`~tidecast.models.learner.
OnlineLearner`, and each baseline through :class:`~tidecast.models.baselines.panel_adapter.BaselineLearner`)
passes one contract suite (``tests/unit/test_models_contract.py``).

>>> from tidecast.models.quantiles import DEFAULT_QUANTILES, median_index
>>> DEFAULT_QUANTILES, median_index(DEFAULT_QUANTILES)
((0.1, 0.5, 0.9), 1)
"""
