"""``tidecast serve``: a local web view of the live forecaster (part of the front: it may import anything but the
commands, which hand it what it reads). :mod:`.state` follows the forecast and target topics and keeps what the
page shows, :mod:`.svg` draws the charts on the server (no script, no asset fetched from anywhere), :mod:`.page`
writes the HTML and :mod:`.server` answers on a loopback port.

>>> from tidecast.dashboard.svg import bars
>>> bars({"recent sales": 1.5}).startswith("<svg")
True
"""
