"""The forecasting loop: at every bucket close, read the windows, learn, forecast, publish, checkpoint.

A bucket ``t`` closes when every input partition's watermark (max event time - lateness) has reached its
end; idle partitions are moved along by the ingest worker, so they do not hold closes back forever. The
loop closes buckets strictly in order, one at a time:

1. read the windows of bucket ``t`` for all series and slide them into the panel;
2. learn from the labels that bucket ``t`` matured (the learner never sees anything after ``t``);
3. forecast buckets ``t+1 .. t+H`` for every series active within the retention;
4. publish one message per series (deterministic ids);
5. checkpoint the learner and the series registry, with ``t`` as the last closed bucket.

A restart loads the checkpoint, rebuilds the panel from the stored windows and continues with ``t+1``: no
bucket is skipped or learned twice. A crash between 4 and 5 re-publishes bucket ``t`` with the same ids.
The checkpoint records the bucket size, horizon and quantiles it was written with; a forecaster started
with other ones refuses to resume from it (:class:`CheckpointMismatch`) instead of mixing the two.

After a downtime longer than the retention, the buckets between the last close and the oldest one every
partition still retains have been trimmed from the store: read, they would look like zero demand. The loop
jumps over them (:attr:`CloseReport.skipped` says how many) and does not learn again until its panel holds
retained buckets only, so the model never learns zeros that were trimmed windows.

Catching up (after a downtime, or started on a backlog), a close whose every target bucket has closed
already forecasts nothing anyone can use: with ``publish_closed=False`` (the live jobs) the loop learns from it
and checkpoints it but neither forecasts nor publishes it (:attr:`CloseReport.stale`); the backtest, which
scores every origin, keeps the default ``True``.

A run of empty buckets (no series has any activity) longer than ``max_empty_buckets`` is held instead of
closed: a clock that jumped (a mis-dated event, an idle partition moved too far) would otherwise close
thousands of empty buckets and teach the model zero demand. The loop stops before the next empty bucket and
says why (:attr:`Forecaster.held`) until an operator allows more (:meth:`Forecaster.allow_empty`). The run's
length is in the checkpoint, so a restart does not reset it.

>>> import numpy as np
>>> from tidecast.stream.ports import MemoryCheckpoints, MemorySink
>>> from tidecast.stream.window_store import MemoryWindowStore
>>> class Mean:  # the smallest learner: forecasts each series' last bucket
...     model_version, min_history, horizon, quantiles = 0, 2, 1, (0.5,)
...     def learn(self, history, *rest): self.model_version += 1; return {}
...     def forecast(self, history, *rest): return history[:, -1:, :1], history[:, -1:, 0]
...     def state_dict(self): return {}
...     def load_state_dict(self, state): pass
>>> config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=7, quantiles=(0.5,), inputs=())
>>> loop = Forecaster(config, MemoryWindowStore(), Mean(), MemorySink(), MemoryCheckpoints(), lambda s: b"", dict)
>>> report = loop.close_bucket(20_000)
>>> report.bucket, report.model_version, loop.last_closed
(20000, 1, 20000)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tidecast.models.quantiles import median_index
from tidecast.models.replenishment import Policy
from tidecast.stream.forecast_message import DEFAULT_LINEAGE, EXPLAIN_STEPS, ForecastBatch, explain_fields
from tidecast.stream.plan_history import PlanHistory
from tidecast.stream.ports import CheckpointStore, ForecastSink, Learner
from tidecast.stream.series_panel import SeriesPanel
from tidecast.stream.stock_targets import stock_targets
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import WindowStore

STATE_FORMAT = "tidecast.forecaster/2"  # /2: records bucket size, horizon and quantiles


class CheckpointMismatch(ValueError):
    """The checkpoint was written under another bucket size, horizon or quantiles than this forecaster's."""


@dataclass(frozen=True, slots=True)
class ForecasterConfig:
    bucket_seconds: int
    lateness_seconds: int
    retention: int
    quantiles: tuple[float, ...]
    inputs: tuple[str, ...]
    """The ``topic:partition`` names whose watermarks gate a close (every input partition owned)."""
    lineage: str = DEFAULT_LINEAGE
    """Names this forecaster in its forecasts' ids, which stay stable when its checkpoint is lost."""
    max_empty_buckets: int | None = None
    """Empty buckets closed in a row before the loop holds (None: no limit, as in the backtest)."""
    publish_closed: bool = True
    """Publish forecasts whose every target bucket has closed already (a catch-up); False for the live jobs."""
    policy: Policy | None = None
    """The settings' replenishment policy: with it (and a learner that makes lead-time quantiles at
    ``lead_levels``) every close also publishes each series' stock target, its ``policy`` and ``inventory``
    events read from the store (:mod:`tidecast.stream.stock_targets`)."""
    lead_levels: tuple[float, ...] = ()
    explain: bool = False
    """Publish each forecast's explanation (``explain``; :func:`~tidecast.stream.forecast_message.explain_fields`),
    when the learner can explain (tidecast's network)."""


@dataclass(slots=True)
class CloseReport:
    """What one bucket close did and how long each stage took (seconds)."""

    bucket: int
    series: int
    published: int
    model_version: int
    learn: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: int = 0
    """Buckets jumped over just before this close: trimmed from the store during a downtime."""
    stale: bool = False
    """Caught up: every target bucket of this close had closed, so nothing was forecast or published."""


class Forecaster:
    """Closes buckets as the watermarks allow (see the module docstring)."""

    def __init__(
        self,
        config: ForecasterConfig,
        store: WindowStore,
        learner: Learner,
        sink: ForecastSink,
        checkpoints: CheckpointStore,
        dumps: Callable[[dict], bytes],
        loads: Callable[[bytes], dict],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.learner = learner
        self.sink = sink
        self.checkpoints = checkpoints
        self.dumps, self.loads = dumps, loads
        self.clock = clock
        self.buckets = Buckets(config.bucket_seconds)
        self.panel_length = max(learner.min_history, 2)
        self.panel = SeriesPanel(self.panel_length)
        # plans of the panel's buckets and the H after them, for a learner that takes them (``plan_inputs``)
        self.plans = PlanHistory(self.panel_length, learner.horizon) if getattr(learner, "plan_inputs", False) else None
        self.last_closed: int | None = None
        self.learn_from: int | None = None  # after a jump over trimmed buckets: the first bucket learned again
        self.empty_run = 0  # empty buckets closed in a row
        self.empty_allowed = 0  # extra empty buckets an operator allowed beyond max_empty_buckets
        self.held: str | None = None  # why the loop holds, while it does
        self._resume()

    def closable_through(self) -> int | None:
        """The newest bucket every input partition has closed, or None while any has no watermark."""
        open_from = self._open_from()
        return None if open_from is None else min(open_from) - 1

    def retained_from(self) -> int | None:
        """The oldest bucket that no input partition has trimmed yet (each keeps ``retention`` buckets behind
        its own watermark), or None while any has no watermark."""
        open_from = self._open_from()
        return None if open_from is None else max(open_from) - self.config.retention

    def _open_from(self) -> list[int] | None:
        """Per input partition, the oldest bucket its watermark leaves open."""
        known = self.store.max_event_times()
        if not self.config.inputs or any(name not in known for name in self.config.inputs):
            return None
        lateness_ms = self.config.lateness_seconds * 1000
        return [self.buckets.index(known[name] - lateness_ms) for name in self.config.inputs]

    def step(self, limit: int | None = None, stop: Callable[[], bool] | None = None) -> list[CloseReport]:
        """Close every bucket that can close now (at most ``limit``, and none once ``stop()`` is true: a
        catch-up of many buckets ends between two closes when asked); returns one report per close."""
        through = self.closable_through()
        if through is None:
            return []
        if self.last_closed is None:
            retained = self.store.buckets()
            if not retained:
                return []
            self.last_closed = min(retained) - 1
        skipped = self._skip_trimmed()
        reports: list[CloseReport] = []
        while (self.last_closed < through and (limit is None or len(reports) < limit)
               and not (stop is not None and stop())):
            t = self.last_closed + 1
            started = time.perf_counter()
            rows = self.store.read_bucket(t)
            if not rows and self._hold(t):
                break
            stale = not self.config.publish_closed and t + self.learner.horizon <= through
            reports.append(self.close_bucket(t, rows, time.perf_counter() - started, stale))
            reports[-1].skipped, skipped = skipped, 0
        return reports

    def allow_empty(self, buckets: int) -> None:
        """An operator's go-ahead: close up to ``buckets`` more empty buckets in a row than the limit allows."""
        self.empty_allowed += max(0, int(buckets))
        self.held = None

    def _hold(self, t: int) -> bool:
        """Whether empty bucket ``t`` must wait (see the module docstring); sets :attr:`held` if so."""
        limit = self.config.max_empty_buckets
        if limit is None or self.empty_run < limit + self.empty_allowed:
            return False
        self.held = (
            f"holding before bucket {self.buckets.iso(self.buckets.start_ms(t))}: {self.empty_run} empty buckets "
            "closed in a row (no series had any activity), the most allowed. A clock that jumped (an event dated "
            "far ahead) closes empty buckets; check the input, then allow more (--allow-empty-buckets N)"
        )
        return True

    def _skip_trimmed(self) -> int:
        """Jump over buckets trimmed from the store (see the module docstring); how many were skipped."""
        retained = self.retained_from()
        if retained is None or self.last_closed is None or self.last_closed + 1 >= retained:
            return 0
        skipped = retained - 1 - self.last_closed
        registry = self.panel.registry()
        registry["t"] = retained - 1
        self.panel = SeriesPanel.from_registry(self.panel_length, registry)  # the trimmed columns read 0
        self.last_closed = retained - 1
        self.learn_from = retained - 1 + self.panel_length  # the first close whose panel is all retained
        return skipped

    def close_bucket(
        self, t: int, rows: dict[str, list[float]] | None = None, read_seconds: float = 0.0, stale: bool = False
    ) -> CloseReport:
        """Run the five stages for bucket ``t`` (the next one in order); ``rows``: its windows, if already read;
        ``stale``: every target has closed already, so learn and checkpoint only."""
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        if rows is None:
            rows = self.store.read_bucket(t)
        self.panel.push(t, rows)
        self.empty_run = 0 if rows else self.empty_run + 1
        if rows:
            self.empty_allowed = 0  # an allowance covers one run of empty buckets
        seconds["read"] = _lap(started) + read_seconds

        history, first_seen = self.panel.history, self.panel.first_seen
        stores, skus = self.panel.stores_and_skus()
        plan_kw: dict = {}
        hashes: list[str | None] | None = None
        if self.plans is not None:  # the plans known now of t+1 .. t+H; earlier columns as known then
            started = time.perf_counter()
            hashes = self.plans.advance(t, self.store, self.panel.series)
            plan_kw["plans"] = self.plans.window()
            seconds["plans"] = _lap(started)
        started = time.perf_counter()
        if self.learn_from is None or t >= self.learn_from:
            learned = self.learner.learn(history, first_seen, stores, skus, t, self.config.bucket_seconds,
                                         **plan_kw)
        else:  # the panel still holds trimmed (zero) columns: forecast from it, but learn nothing
            learned = {"t": t, "skipped": True, "reason": "history spans buckets trimmed during a downtime"}
        seconds["learn"] = _lap(started)

        published = 0
        seconds["forecast"] = seconds["publish"] = 0.0
        started = time.perf_counter()
        active = self.panel.active_since(t - self.config.retention + 1)
        if plan_kw:
            plan_kw["plans"] = plan_kw["plans"][active]
        args = (history[active], first_seen[active], [stores[i] for i in active], [skus[i] for i in active], t,
                self.config.bucket_seconds)
        remember = getattr(self.learner, "remember", None)
        if stale and remember is not None:  # what would have been published, for the calibration's memory
            remember(*args, **plan_kw)
            seconds["forecast"] = _lap(started)
        if not stale:
            values, mean = self.learner.forecast(*args, **plan_kw)
            seconds["forecast"] = _lap(started)

            started = time.perf_counter()
            batch = ForecastBatch(
                bucket_seconds=self.config.bucket_seconds,
                origin_ms=self.buckets.start_ms(t + 1),
                quantiles=self.config.quantiles,
                model_version=self.learner.model_version,
                issued_at_ms=int(self.clock() * 1000),
                lineage=self.config.lineage,
            )
            names = [self.panel.series[i] for i in active]
            lead = getattr(self.learner, "last_lead", None)  # a learner's lead-time quantiles, when it makes them
            extra: dict = {} if lead is None else {"lead": lead}
            explain = getattr(self.learner, "explain", None) if self.config.explain else None
            if explain is not None:
                found = explain(*args, **plan_kw, steps=EXPLAIN_STEPS)
                extra["explanations"] = explain_fields(found, values, median_index(self.config.quantiles))
                seconds["explain"] = _lap(started)
                started = time.perf_counter()
            if lead is not None and self.config.policy is not None:
                extra["targets"] = stock_targets(names, lead, self.config.lead_levels, self.config.policy,
                                                 self.store.read_standing("policy"),
                                                 self.store.read_standing("inventory"))
            published = self.sink.publish(batch, names, values, mean,
                                          plans=None if hashes is None else [hashes[i] for i in active], **extra)
            seconds["publish"] = _lap(started)

        started = time.perf_counter()
        self.last_closed = t
        self.checkpoints.save(self.dumps(self.state()))
        seconds["checkpoint"] = _lap(started)
        return CloseReport(t, len(self.panel), published, self.learner.model_version, learned, seconds, stale=stale)

    def shape(self) -> dict:
        """What a checkpoint must agree on to be resumed: bucket size, horizon and quantiles."""
        return {
            "bucket_seconds": self.config.bucket_seconds,
            "horizon": self.learner.horizon,
            "quantiles": list(self.config.quantiles),
        }

    def state(self) -> dict:
        return {
            "format": STATE_FORMAT,
            **self.shape(),
            "last_closed": self.last_closed,
            "learn_from": self.learn_from,
            "empty_run": self.empty_run,
            "panel": self.panel.registry(),
            "learner": self.learner.state_dict(),
        }

    def _resume(self) -> None:
        blob = self.checkpoints.load()
        if blob is None:
            return
        state = self.loads(blob)
        self._check(state)
        try:
            self.learner.load_state_dict(state["learner"])
        except ValueError as exc:  # a learner state of another format: refused like a checkpoint of another shape
            raise CheckpointMismatch(str(exc)) from None
        self.last_closed = state["last_closed"]
        self.learn_from = state.get("learn_from")
        self.empty_run = int(state.get("empty_run", 0))
        self.panel = SeriesPanel.from_registry(self.panel_length, state["panel"])
        if self.panel.t is not None:
            for bucket in range(self.panel.t - self.panel_length + 1, self.panel.t + 1):
                self.panel.fill(bucket, self.store.read_bucket(bucket))


    def _check(self, state: dict) -> None:
        found = state.get("format")
        if found != STATE_FORMAT:
            raise CheckpointMismatch(
                f"the checkpoint is a {found!r} state, not {STATE_FORMAT!r} (written by another tidecast version): "
                "start the forecaster afresh (delete its checkpoint key) or run the version that wrote it"
            )
        names = {"bucket_seconds": "bucket size (TIDECAST_BUCKET, seconds)", "horizon": "horizon (TIDECAST_HORIZON)",
                 "quantiles": "quantiles (TIDECAST_QUANTILES)"}
        differ = [f"{names[key]}: checkpoint {state.get(key)!r}, now {now!r}"
                  for key, now in self.shape().items() if state.get(key) != now]
        if differ:
            raise CheckpointMismatch(
                "the checkpoint was written with another " + "; ".join(differ)
                + ". Restore those settings, or start the forecaster afresh (delete its checkpoint key)"
            )


def _lap(started: float) -> float:
    return time.perf_counter() - started
