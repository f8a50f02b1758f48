"""tidecast: a streaming, online-learning demand forecaster.

The thin front lives here (CLI, configuration, the embedded-infrastructure launcher); the logic lives in
``tidecast.stream``, ``tidecast.models``, ``tidecast.consumers`` and ``tidecast.producers``.
"""

__version__ = "0.1.0"
