"""With the broker gone, publishing a close raises within the publish timeout instead of returning as if
delivered (kafka-python's flush() hung for over 60 s, then returned without an error); with the broker paused
it raises :class:`PublishUnreachable`, and the producer publishes again once the broker answers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tidecast.config import Settings
from tidecast.infra.embedded import binaries
from tidecast.infra.processes import free_port, wait_for_port
from tidecast.producers.forecast_publisher import KafkaForecastSink, PublishError, PublishUnreachable
from tidecast.stream.adapters.kafka_clients import create_topics
from tidecast.stream.forecast_message import ForecastBatch

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A broker of this test's own (the session's must stay up), stopped by this test."""
    tansu, _ = binaries()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with (tmp_path / "tansu.log").open("wb") as log:
        broker = subprocess.Popen([str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url,
                                   "--storage-engine", "memory://tansu/"], stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port(port, 20), "the broker did not start"
        yield broker, f"127.0.0.1:{port}"
    finally:
        if broker.poll() is None:
            broker.kill()  # this test's own child, by its handle
        broker.wait(10)


def a_close(series: int = 500) -> tuple[ForecastBatch, list[str], np.ndarray, np.ndarray]:
    names = [f"s{i % 7}:A{i}" for i in range(series)]
    values = np.tile(np.array([1.0, 2.0, 3.0], np.float32), (series, 3, 1))
    return ForecastBatch(86_400, 1_767_571_200_000, (0.1, 0.5, 0.9), 1, 0), names, values, values[:, :, 1]


def test_publish_raises_when_the_broker_is_down(own_broker: tuple[subprocess.Popen, str]) -> None:
    broker, bootstrap = own_broker
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix="down.")
    create_topics(bootstrap, [settings.topics.forecasts], 4)
    sink = KafkaForecastSink(settings, bootstrap, publish_timeout=3.0)
    try:
        assert sink.publish(*a_close()) == 500  # acknowledged while the broker is up
        broker.terminate()
        broker.wait(10)
        started = time.monotonic()
        with pytest.raises(PublishError, match=r"500 of 500 forecast messages to down.forecasts not acknowledged "
                                               r"within 3 s"):
            sink.publish(*a_close())
        assert time.monotonic() - started < 10
    finally:
        started = time.monotonic()
        sink.close()
        assert time.monotonic() - started < 10  # close gives up after the timeout too


def test_a_publish_after_a_flush_timed_out_on_a_paused_broker_is_acknowledged(
    own_broker: tuple[subprocess.Popen, str],
) -> None:
    """The flush that timed out leaves kafka-python's producer usable: once the broker answers, the same close
    published again is acknowledged at once, and so is the next one (the earlier sends complete on their own)."""
    broker, bootstrap = own_broker
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix="paused.")
    create_topics(bootstrap, [settings.topics.forecasts], 4)
    sink = KafkaForecastSink(settings, bootstrap, publish_timeout=2.0)
    try:
        assert sink.publish(*a_close()) == 500
        assert broker.pid > 0
        broker.send_signal(signal.SIGSTOP)  # this test's own broker, by its handle
        try:
            with pytest.raises(PublishUnreachable, match="not acknowledged within 2 s"):
                sink.publish(*a_close())
        finally:
            broker.send_signal(signal.SIGCONT)
        started = time.monotonic()
        assert sink.publish(*a_close()) == 500
        assert sink.publish(*a_close()) == 500
        assert time.monotonic() - started < 10
        assert not sink.producer._accumulator.has_incomplete  # nothing of the timed-out flush is left pending
    finally:
        sink.close()
