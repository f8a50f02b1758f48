"""Kafka consumer loops: the ingest worker (with its committer thread and DLQ messages) and the forecast reader.

Folder ``consumers/`` (imported as ``tidecast.consumers``). It may import kafka-python, the stream core and
its adapters, and ``tidecast.config``; never the producers, the backtest or the front.

>>> from tidecast.consumers.dlq import dlq_message
>>> from tidecast.stream.ingest import Reject
>>> dlq_message(Reject("tidecast.sales", 0, 7, None, b"{", "not valid JSON"), 0)[:31]
b'{"reason":"not valid JSON","sou'
"""
