"""Event producers (synthetic generator, file replay, fault injection, pacing) and the forecast publisher.

Folder ``producers/`` (imported as ``tidecast.producers``). It may import kafka-python, the stream core and
its adapters, and ``tidecast.config``; never the consumers, the backtest or the front.

>>> from tidecast.producers.event_sender import route
>>> from tidecast.config import Topics
>>> route({"type": "sale", "sku": "A", "store": "s1"}, Topics("tidecast."))
('tidecast.sales', b's1:A')
"""
