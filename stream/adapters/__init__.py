"""Adapters of the stream core to real servers: the Redis window and checkpoint stores, the Redis client builder,
Kafka client settings, retrying through outages (``retry``).

Folder ``stream/adapters/``. These modules may import redis and kafka-python and the core
(``tidecast.stream``), never the front (``tidecast.cli``, ``commands``, ``live``, ``infra``) nor the backtest.
``redis_store`` holds the Lua script it runs (``lua/commit_batch.lua``).

>>> from tidecast.stream.adapters.redis_store import RedisWindowStore
>>> RedisWindowStore.partition_prefix("tidecast.", 3)
'tidecast.{3}:'
"""
