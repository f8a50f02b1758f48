"""The embedded servers (Tansu, a Kafka-compatible broker, and valkey-server) and where servers are.

Folder ``tidecast/infra/``: ``embedded`` (start, find, stop the servers of a ``TIDECAST_HOME``),
``supervisor`` (the process that owns them), ``processes`` (child-process hygiene), ``endpoints``
(configured servers or the embedded ones). Part of the front: it may import ``tidecast.config`` and the
Kafka client helpers of ``tidecast.stream.adapters``; nothing in the core imports it.

>>> from pathlib import Path
>>> from tidecast.config import Settings
>>> find(Settings(home=Path("/nonexistent"))) is None
True
"""

from tidecast.config import Endpoints
from tidecast.infra.embedded import InfraError, binaries, down, find, read_state, running, up
from tidecast.infra.endpoints import NoServers, resolve

__all__ = ["Endpoints", "InfraError", "NoServers", "binaries", "down", "find", "read_state", "resolve", "running",
           "up"]
