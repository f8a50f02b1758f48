"""The live wiring behind ``ingest``, ``forecast``, ``run`` and ``demo``: Redis windows, the forecaster and its
Kafka sink, the loops that drive them, and the signal handling they share.

- :func:`build`: the forecaster on Redis windows and checkpoints, publishing to Kafka (a context manager);
- :func:`run_ingest`: one ingest worker until stopped or idle (``tidecast ingest``);
- :func:`run_forecast`: the forecaster alone, closing buckets as the watermarks pass (``tidecast forecast``);
- :func:`run_ingest_and_forecast`: both on one thread, buckets closed between polls (``tidecast run``, the demo);
- :func:`stop_on_signals`: SIGINT/SIGTERM ask the running loop to finish cleanly;
- :func:`build_read_only`: the forecaster resumed read-only, for ``tidecast whatif`` (no lease, no Kafka).

The commands keep the flags and what is printed. torch, the learner, kafka and redis are imported when a
loop is started, not with this module.

>>> with stop_on_signals() as stop:
...     stop.call(lambda: print("worker asked to stop"))
...     signal.raise_signal(signal.SIGTERM)
worker asked to stop
>>> stop.requested
True
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tidecast.config import ConfigError, Endpoints, Settings, redact

if TYPE_CHECKING:
    from tidecast.consumers.ingest_worker import IngestProgress
    from tidecast.models.learner import LearnerConfig
    from tidecast.producers.forecast_publisher import KafkaForecastSink
    from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints
    from tidecast.stream.adapters.redis_clients import RedisClient
    from tidecast.stream.forecaster import CloseReport, Forecaster, ForecasterConfig
    from tidecast.stream.shards import Shard
    from tidecast.stream.window_store import WindowStore

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """A stop request: set by a signal (see :func:`stop_on_signals`) or by :meth:`request`.

    >>> stop = Stop()
    >>> stop.request()
    >>> stop.call(lambda: print("called at once: the request came first"))
    called at once: the request came first
    """

    def __init__(self) -> None:
        self.requested = False
        self._action: Callable[[], None] | None = None

    def call(self, action: Callable[[], None]) -> None:
        """Have a request call ``action`` (e.g. a worker's ``stop``), instead of the previous one; at once if a
        request came already."""
        self._action = action
        if self.requested:
            action()

    def request(self) -> None:
        self.requested = True
        if self._action is not None:
            self._action()


@contextlib.contextmanager
def stop_on_signals(signals: Iterable[signal.Signals] = STOP_SIGNALS) -> Iterator[Stop]:
    """For the ``with`` block, ``signals`` request a :class:`Stop` instead of ending the process; the previous
    handlers come back on the way out. ``signals=()`` leaves the handlers alone (Ctrl-C raises as usual)."""
    stop = Stop()
    previous = {sig: signal.signal(sig, lambda *_: stop.request()) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def learner_config(settings: Settings) -> LearnerConfig:
    from tidecast.models.learner import LearnerConfig
    from tidecast.models.learner_config import DEFAULT_SERVICE_LEVELS

    return LearnerConfig(horizon=settings.horizon, quantiles=settings.quantiles, plans=True,  # <prefix>plans
                         service_levels=tuple(sorted({*DEFAULT_SERVICE_LEVELS, settings.service_level})))


def forecaster_config(settings: Settings, inputs: tuple[str, ...]) -> ForecasterConfig:
    from tidecast.stream.forecaster import ForecasterConfig

    return ForecasterConfig(
        bucket_seconds=settings.bucket_seconds,
        lateness_seconds=settings.lateness_seconds,
        retention=settings.retention,
        quantiles=settings.quantiles,
        inputs=inputs,
        lineage=f"{settings.topic_prefix}forecaster:all",
        max_empty_buckets=settings.max_empty_buckets,
        publish_closed=False,  # catching up, forecasts whose every target has closed are not published
        policy=settings.policy,
        lead_levels=learner_config(settings).lead_quantiles,
        explain=settings.explain,
    )


@dataclass
class LiveForecaster:
    """The forecaster, its Kafka sink, the window store it reads and the lease on its checkpoint; ``close`` (or
    the ``with`` block) ends the sink and gives the lease up."""

    forecaster: Forecaster
    sink: KafkaForecastSink
    store: WindowStore
    settings: Settings
    endpoints: Endpoints
    lease: LeasedCheckpoints

    def close(self) -> None:
        try:
            self.sink.close()
        finally:
            self.lease.release()

    def __enter__(self) -> LiveForecaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build(settings: Settings, endpoints: Endpoints, shard: Shard | None = None) -> LiveForecaster:
    """A forecaster on Redis and Kafka, resumed from its checkpoint when there is one; with ``shard`` (``I/N``,
    N > 1) it forecasts the series of its own partitions only, under its own checkpoint and lease
    (:mod:`tidecast.stream.shards`).

    Outages: its window reads and lease calls ride out a Redis outage, and its publishes a broker outage, for up
    to ``TIDECAST_OUTAGE_TIMEOUT`` (:mod:`tidecast.stream.adapters.retry`; then ``OutageError``, exit 1). Its
    Redis client is built as the ingest worker's (``caller_retries``: no silent redis-py retries, a 10 s
    reply limit), so a paused server is retried rather than waited on.

    torch gets ``TIDECAST_TORCH_THREADS`` threads (default 1): on a small machine the ingest worker, the
    committer and the broker need the other cores, and the model is small.
    """
    import torch

    from tidecast.models import checkpoint
    from tidecast.models.learner import OnlineLearner
    from tidecast.producers.forecast_publisher import KafkaForecastSink, PublishUnreachable
    from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisWindowStore
    from tidecast.stream.adapters.retry import REDIS_ERRORS, Outage, RetryingStore
    from tidecast.stream.forecaster import CheckpointMismatch, Forecaster
    from tidecast.stream.shards import Shard, ShardView

    shard = shard or Shard()
    torch.set_num_threads(int(os.environ.get("TIDECAST_TORCH_THREADS", "1")))
    client = redis_client(settings, endpoints.redis, caller_retries=True)
    redis_outage = Outage("Redis", settings.outage_timeout_seconds, REDIS_ERRORS)  # one for windows and lease
    store: WindowStore = RetryingStore(RedisWindowStore(client, settings.topic_prefix), redis_outage)
    if shard.count > 1:
        store = ShardView(store, shard)
    checkpoints = LeasedCheckpoints(client, settings.topic_prefix, name=shard.name, outage=redis_outage)
    learner = OnlineLearner(learner_config(settings))
    if learner.min_history > settings.retention:
        raise ConfigError(
            f"TIDECAST_RETENTION ({settings.retention}) must cover the model's history "
            f"({learner.min_history} buckets: lags + horizon)"
        )
    checkpoints.acquire(holder_is_dead=dead_on_this_host)  # LeaseHeld: the CLI prints it and exits 1
    try:
        kafka_outage = Outage("Kafka (forecasts)", settings.outage_timeout_seconds, (PublishUnreachable,))
        sink = KafkaForecastSink(settings, endpoints.kafka, outage=kafka_outage, targets=True)
    except BaseException:
        checkpoints.release()
        raise
    try:
        inputs = tuple(
            f"{topic}:{partition}"
            for topic in settings.topics.inputs
            for partition in sorted(sink.producer.partitions_for(topic))
        )
        if shard.count > 1:
            check_shards(shard, {topic: len(sink.producer.partitions_for(topic)) for topic in settings.topics.inputs})
        check_layout(client, settings.topic_prefix, shard)
        with checkpoints.kept():  # resuming reads the retained windows: long at a million series
            forecaster = Forecaster(forecaster_config(settings, inputs), store, learner, sink, checkpoints,
                                    checkpoint.dumps, checkpoint.loads)
    except CheckpointMismatch as exc:
        sink.close()
        checkpoints.release()
        raise ConfigError(f"Redis key {checkpoints.key} on {redact(endpoints.redis)}: {exc}") from None
    except BaseException:
        sink.close()
        checkpoints.release()
        raise
    return LiveForecaster(forecaster, sink, store, settings, endpoints, checkpoints)


def check_shards(shard: Shard, partitions: dict[str, int]) -> None:
    """Refuse a shard of ``partitions`` (input topic -> partition count) that it cannot own alone: topics
    whose counts differ put one series in other partition numbers, which two shards would each publish.

    >>> from tidecast.stream.shards import Shard
    >>> try:
    ...     check_shards(Shard(1, 4), {"t.sales": 12, "t.clicks": 6})
    ... except ConfigError as exc:
    ...     print(str(exc)[:86])
    --shard 1/4: the input topics have different partition counts (t.clicks 6, t.sales 12)
    """
    counts = sorted(set(partitions.values()))
    where = f"--shard {shard.index}/{shard.count}"
    if len(counts) > 1:
        listed = ", ".join(f"{topic} {count}" for topic, count in sorted(partitions.items()))
        raise ConfigError(f"{where}: the input topics have different partition counts ({listed}): a series would "
                          "sit in other partition numbers, and two shards would publish it; give them one count "
                          "(TIDECAST_PARTITIONS)")
    if counts and shard.count > counts[0]:
        raise ConfigError(f"{where}: the input topics have {counts[0]} partitions, so at most {counts[0]} shards can "
                          "each own one")


def check_layout(client: RedisClient, prefix: str, shard: Shard) -> None:
    """Refuse to start shard ``I/N`` (or the one unsharded forecaster, ``0/1``) while a forecaster of another
    layout holds a lease under ``prefix``: both would publish the same series with other values."""
    from tidecast.stream.adapters.forecaster_lease import LeasedCheckpoints, held_leases
    from tidecast.stream.shards import Shard

    ours = {LeasedCheckpoints.lease_key(prefix, Shard(i, shard.count).name) for i in range(shard.count)}
    others = sorted(lease for lease in held_leases(client, prefix) if lease not in ours)
    if others:
        raise ConfigError(
            f"--shard {shard.index}/{shard.count}: a forecaster of another layout runs (its lease: "
            f"{', '.join(others)}); stop every forecaster of the old layout before starting the new one "
            "(docs/scaling.md)"
        )


def build_read_only(settings: Settings, endpoints: Endpoints, shard: Shard | None = None) -> Forecaster:
    """The live forecaster (or forecaster ``shard``) as a restart would resume it (its checkpoint, the Redis
    windows and plans), for a what-if: it takes no lease (the running forecaster keeps its own), connects no
    Kafka, and can neither save the checkpoint nor publish (:func:`tidecast.stream.whatif.read_only`). No
    checkpoint, an unreadable one or one of another shape is a :class:`ConfigError` (exit 2)."""
    from tidecast.models import checkpoint
    from tidecast.models.learner import OnlineLearner
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisCheckpoints, RedisWindowStore
    from tidecast.stream.forecaster import CheckpointMismatch
    from tidecast.stream.shards import Shard, ShardView
    from tidecast.stream.whatif import read_only

    shard = shard or Shard()
    client = redis_client(settings, endpoints.redis)
    checkpoints = RedisCheckpoints(client, settings.topic_prefix, shard.name)
    key = checkpoints.key
    blob = checkpoints.load()
    where = f"Redis key {key} on {redact(endpoints.redis)}"
    if blob is None:
        raise ConfigError(f"{where}: no checkpoint: no model has closed a bucket yet (tidecast run or forecast first)")
    try:
        state = checkpoint.loads(blob)
        store: WindowStore = RedisWindowStore(client, settings.topic_prefix)
        return read_only(forecaster_config(settings, ()), store if shard.count == 1 else ShardView(store, shard),
                         OnlineLearner(learner_config(settings)), blob, lambda _: state)
    except (checkpoint.CheckpointError, CheckpointMismatch) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def dead_on_this_host(holder: str) -> bool:
    """Whether a holder ``host:pid:tag`` (a forecaster's lease, an ingest worker's membership) is a process of
    this host that is gone (SIGKILLed): its lease or partitions can be taken over at once instead of after its
    time to live.

    >>> dead_on_this_host(f"{socket.gethostname()}:{os.getpid()}:abc"), dead_on_this_host("elsewhere:1:abc")
    (False, False)
    """
    from tidecast.infra.processes import pid_alive

    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and int(pid) > 0 and not pid_alive(int(pid))


def run_ingest(
    settings: Settings,
    endpoints: Endpoints,
    until_idle: float | None,
    on_progress: Callable[[IngestProgress], None] | None = None,
) -> IngestProgress:
    """One ingest worker (of however many run), until SIGINT/SIGTERM or ``until_idle`` seconds without a record."""
    from tidecast.consumers.ingest_worker import IngestWorker
    from tidecast.stream.adapters.ingest_members import RedisMembership
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisWindowStore

    store = RedisWindowStore(redis_client(settings, endpoints.redis, caller_retries=True), settings.topic_prefix)
    worker = IngestWorker(settings, endpoints.kafka, store, RedisMembership(store.client, settings.topic_prefix),
                          on_progress=on_progress, member_is_dead=dead_on_this_host)
    with stop_on_signals() as stop:
        stop.call(worker.stop)
        return worker.run(until_idle=until_idle)


def say_held(message: str) -> None:
    """The default: one loud line on stderr when the forecaster starts to hold (see ``Forecaster.held``)."""
    print(f"tidecast: HOLDING: {message}", file=sys.stderr, flush=True)


class _Holds:
    """Tells ``on_hold`` once each time the forecaster starts to hold."""

    def __init__(self, live: LiveForecaster, on_hold: Callable[[str], None]) -> None:
        self.live, self.on_hold = live, on_hold
        self.told: str | None = None

    def check(self) -> None:
        held = self.live.forecaster.held
        if held is not None and held != self.told:
            self.on_hold(held)
        self.told = held


def run_forecast(
    live: LiveForecaster,
    until_idle: float | None,
    on_close: Callable[[CloseReport], None],
    poll_seconds: float = 0.2,
    on_hold: Callable[[str], None] = say_held,
) -> None:
    """Close buckets one at a time as the watermarks pass, until SIGINT/SIGTERM or, with ``until_idle``, once no
    bucket closed and no watermark moved for that long. ``on_hold`` hears when a run of empty buckets holds
    the loop."""
    last_change, last_marks = time.monotonic(), None
    holds = _Holds(live, on_hold)
    with stop_on_signals() as stop:
        while not stop.requested:
            live.lease.renew()
            with live.lease.kept():  # a close may outlast the lease's time to live
                reports = live.forecaster.step(limit=1)
            holds.check()
            for report in reports:
                on_close(report)
            marks = live.store.max_event_times()
            now = time.monotonic()
            if reports or marks != last_marks:
                last_change, last_marks = now, marks
            elif until_idle is not None and now - last_change >= until_idle:
                break
            if not reports:
                time.sleep(poll_seconds)


def run_ingest_and_forecast(
    live: LiveForecaster,
    until_idle: float | None,
    on_progress: Callable[[IngestProgress], None] | None = None,
    on_close: Callable[[CloseReport], None] = lambda report: None,
    again: Callable[[], bool] = lambda: False,
    signals: Iterable[signal.Signals] = STOP_SIGNALS,
    on_hold: Callable[[str], None] = say_held,
) -> None:
    """Ingest, closing every closable bucket between polls; at the end close what the last records allow.

    An ingest worker runs until stopped or ``until_idle`` seconds without a record; while ``again()`` is true
    (the demo: its producer is still running) a new one carries on. ``signals`` stop the loop cleanly
    (``()``: they are left alone).
    """
    from tidecast.consumers.ingest_worker import IngestWorker
    from tidecast.stream.adapters.ingest_members import RedisMembership
    from tidecast.stream.adapters.redis_clients import redis_client
    from tidecast.stream.adapters.redis_store import RedisWindowStore

    settings, endpoints = live.settings, live.endpoints
    # the worker's own client and outage watch (it retries its own calls), beside the forecaster's
    store = RedisWindowStore(redis_client(settings, endpoints.redis, caller_retries=True), settings.topic_prefix)
    members = RedisMembership(store.client, settings.topic_prefix)

    holds = _Holds(live, on_hold)
    with stop_on_signals(signals) as stop:

        def tick() -> None:  # between polls: keep the lease, close what can close (a stop ends a catch-up)
            live.lease.renew()
            with live.lease.kept():  # a close may outlast the lease's time to live
                for report in live.forecaster.step(stop=lambda: stop.requested):
                    on_close(report)
            holds.check()

        while True:
            worker = IngestWorker(settings, endpoints.kafka, store, members, on_progress=on_progress,
                                  member_is_dead=dead_on_this_host)
            stop.call(worker.stop)
            worker.run(until_idle=until_idle, tick=tick)
            if stop.requested or not again():
                break
        if not stop.requested:
            tick()
