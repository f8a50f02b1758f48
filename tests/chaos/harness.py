"""The chaos run: a real stream through real ``tidecast`` processes while they are killed and their servers fail.

:func:`run` drives one :class:`Plan` on embedded servers of its own (it pauses them and empties Redis):

- a synthetic stream of clicks and sales (with 1% re-sent duplicates), produced one day (bucket) at a time, with a
  hostile corpus (:mod:`tidecast.producers.fuzz`) mixed in from the second day on;
- ``tidecast ingest`` workers splitting the partitions and one ``tidecast forecast``, restarted whenever they end;
- faults: ingest workers SIGKILLed as the ingested count passes random marks, the forecaster SIGKILLed on random
  days (half of them just as the day's forecasts appear: between publishing and checkpointing), Redis paused,
  the broker paused, and Redis emptied (FLUSHALL), after which the run does what an operator would: waits for
  the workers to stop on the lost state, runs ``tidecast rebuild --yes`` and starts them again;
- the day's pace: the next day is produced once the forecasts of the last closed day are out, so the
  forecaster is never so far behind that a catch-up skips publishing (see ``docs/operations.md``).

At the end every process gets SIGTERM and :func:`run` checks, against an independent recount of the produced
stream (:func:`pipeline.recount`, no tidecast code): events lost and double-counted in the windows, every hostile
message in the DLQ with a reason, the DLQ's largest message, forecasts for every (series, origin) the
forecaster closed, one ``forecast_id`` per (series, origin), and processes that ended on their own (crashes).
:class:`Report` holds the figures; ``bench/chaos.py`` prints them, ``tests/chaos`` asserts them.

Signals go only to PIDs this module started or read from its own servers' state file, never to PID <= 0.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pipeline import TIDECAST, env_for, expected_plans, read_dlq_raw, recount

from tidecast import infra
from tidecast.config import Endpoints, Settings
from tidecast.infra.processes import die_with_parent, pid_runs
from tidecast.producers.event_sender import route
from tidecast.producers.faults import with_faults
from tidecast.producers.fuzz import TIME_GUARDED, hostile
from tidecast.producers.synthetic import SyntheticConfig, generate, planned_promotions
from tidecast.stream.adapters.kafka_clients import create_topics, producer_config
from tidecast.stream.adapters.redis_clients import redis_client
from tidecast.stream.adapters.redis_store import RedisWindowStore
from tidecast.stream.events import NO_EVENT
from tidecast.stream.timebuckets import Buckets

STARTUP_S = 1.0
"""Seconds a process is given to start before the final SIGTERM (see :meth:`Crew.terminate`)."""

COUNT_FIELDS = {1: "sale lines", 4: "views", 5: "add-to-carts", 6: "promo lines"}
"""Window fields that count events (see :data:`tidecast.stream.windows.METRICS`): a lost or doubled event shows
in one of them."""


@dataclass(frozen=True)
class Plan:
    """What one chaos run does; :data:`FULL` is bench/chaos.py's default, :data:`CI` the test's."""

    series: int
    days: int
    ingest_workers: int
    ingest_kills: int
    forecaster_kills: int
    flushall: bool
    redis_outage_s: float
    broker_outage_s: float
    fuzz: int
    seed: int = 1
    duplicates: float = 0.01


FULL = Plan(series=400, days=28, ingest_workers=2, ingest_kills=20, forecaster_kills=6, flushall=True,
            redis_outage_s=30, broker_outage_s=30, fuzz=10_000)
CI = Plan(series=40, days=21, ingest_workers=2, ingest_kills=5, forecaster_kills=2, flushall=True,
          redis_outage_s=12, broker_outage_s=12, fuzz=2_000)
KILLS = Plan(series=40, days=14, ingest_workers=2, ingest_kills=5, forecaster_kills=2, flushall=False,
             redis_outage_s=0, broker_outage_s=0, fuzz=500)
"""The kill cases alone (no server paused or emptied): what runs on a Redis Cluster (``run(..., cluster=URL)``)."""


@dataclass
class Report:
    """What a chaos run measured (see the module docstring)."""

    events: int = 0
    duplicates_sent: int = 0
    hostile_sent: int = 0
    hostile_bytes: int = 0
    ingested: int = 0
    """The store's ``ingested`` counter: valid events and plans."""
    lost: dict[str, float] = field(default_factory=dict)
    doubled: dict[str, float] = field(default_factory=dict)
    windows_differing: int = 0
    plans_sent: int = 0
    plans: int = 0
    plans_wrong: int = 0
    """Planned (bucket, target)s missing from Redis or stored with other values than the last plan sent."""
    plans_unexpected: int = 0
    hostile_missing_from_dlq: int = 0
    dlq_without_reason: int = 0
    dlq_messages: int = 0
    dlq_largest_bytes: int = 0
    dlq_reasons: dict[str, int] = field(default_factory=dict)
    origins: int = 0
    forecasts_missing: int = 0
    forecasts_published: int = 0
    ids_per_forecast_max: int = 0
    kills: dict[str, int] = field(default_factory=lambda: {"ingest": 0, "forecaster": 0})
    faults: list[str] = field(default_factory=list)
    stopped_on_lost_state: int = 0
    crashes: list[str] = field(default_factory=list)
    sigterm_exit_s: float = 0.0
    sigterm_nonzero: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (any(self.lost.values()) or any(self.doubled.values()) or self.windows_differing
                    or self.plans_wrong or self.plans_unexpected
                    or self.hostile_missing_from_dlq or self.dlq_without_reason or self.forecasts_missing
                    or self.ids_per_forecast_max > 1 or self.crashes or self.sigterm_nonzero
                    or self.sigterm_exit_s > 10)


def chaos_settings(endpoints: Endpoints, home: Path) -> Settings:
    """Daily buckets, 12 partitions; idle partitions follow the others after 5 s."""
    return Settings(kafka_bootstrap=endpoints.kafka, redis_url=endpoints.redis, home=home, topic_prefix="chaos.",
                    idle_timeout_seconds=5)


class Proc:
    """One ``tidecast`` process of the run, its stderr in a log file."""

    def __init__(self, kind: str, argv: list[str], env: dict[str, str], logs: Path, n: int) -> None:
        self.kind = kind
        self.log = logs / f"{kind}-{n}.log"
        with self.log.open("wb") as err:
            self.popen = subprocess.Popen([*TIDECAST, *argv], env=env, stdout=subprocess.DEVNULL, stderr=err,
                                          preexec_fn=die_with_parent)  # SIGKILLed if the run's thread dies
        self.killed = False
        self.started = time.monotonic()

    def kill(self) -> None:
        if self.popen.pid > 0 and self.popen.poll() is None:
            self.killed = True
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:]


class Crew:
    """The ingest workers and the forecaster: restarted when they end, SIGKILLed on request, each ending classed
    as a kill, an expected stop on lost state (after FLUSHALL) or a crash."""

    def __init__(self, plan: Plan, env: dict[str, str], logs: Path, report: Report, say: Callable[[str], None]):
        self.plan, self.env, self.logs, self.report, self.say = plan, env, logs, report, say
        self.lock = threading.RLock()
        self.counter = itertools.count()
        self.ingest: list[Proc] = []
        self.forecaster: Proc | None = None
        self.hold_ingest = False  # after FLUSHALL: no restarts until the rebuild
        self.stopping = False  # the end: no restarts at all
        self.expect_lost = False

    def start(self) -> None:
        with self.lock:
            self.ingest = [self._ingest() for _ in range(self.plan.ingest_workers)]
            self.forecaster = self._forecaster()

    def _ingest(self) -> Proc:
        return Proc("ingest", ["ingest"], self.env, self.logs, next(self.counter))

    def _forecaster(self) -> Proc:
        return Proc("forecast", ["forecast"], self.env, self.logs, next(self.counter))

    def tend(self) -> None:
        """Class every process that ended and start its successor (ingest: unless held)."""
        with self.lock:
            if self.stopping:
                return
            kept = []
            for proc in self.ingest:
                if proc.popen.poll() is None:
                    kept.append(proc)
                else:
                    self._ended(proc)
            self.ingest = kept
            if not self.hold_ingest:
                self.ingest += [self._ingest() for _ in range(self.plan.ingest_workers - len(self.ingest))]
            if self.forecaster is not None and self.forecaster.popen.poll() is not None:
                self._ended(self.forecaster)
                self.forecaster = self._forecaster()

    def _ended(self, proc: Proc) -> None:
        code = proc.popen.returncode
        if proc.killed:
            return
        text = proc.tail()
        if proc.kind == "ingest" and self.expect_lost and code == 1 and "lost" in text.lower():
            self.report.stopped_on_lost_state += 1
            return
        self.report.crashes.append(f"{proc.kind} ({proc.log.name}) exited {code}: {text[-600:]}")
        self.say(f"CRASH: {self.report.crashes[-1]}")

    def kill_ingest(self, rng: random.Random) -> bool:
        with self.lock:
            alive = [p for p in self.ingest if p.popen.poll() is None and time.monotonic() - p.started > 1.0]
            if not alive:
                return False
            rng.choice(alive).kill()
            self.report.kills["ingest"] += 1
            return True

    def kill_forecaster(self) -> None:
        with self.lock:
            if self.forecaster is not None:
                self.forecaster.kill()
                self.report.kills["forecaster"] += 1

    def terminate(self) -> None:
        """SIGTERM to every process at once; records the slowest exit and any non-zero one."""
        with self.lock:
            self.stopping = True
            procs = [p for p in [*self.ingest, self.forecaster] if p is not None and p.popen.poll() is None]
            # A process restarted a moment ago may still be in the interpreter's own startup, before any line of
            # tidecast runs: no program can handle a signal there. Give it the second its first line needs.
            youngest = max((p.started for p in procs), default=0.0)
            time.sleep(max(0.0, youngest + STARTUP_S - time.monotonic()))
            started = time.monotonic()
            for proc in procs:
                proc.popen.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.popen.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if proc.popen.returncode != 0:
                    self.report.sigterm_nonzero.append(f"{proc.kind} exited {proc.popen.returncode}: {proc.tail()}")
            self.report.sigterm_exit_s = time.monotonic() - started
            self.ingest, self.forecaster = [], None


class Forecasts:
    """Reads the forecast topic from the start on a thread: the forecast ids per (series, origin)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.origins: dict[str, int] = defaultdict(int)
        self.messages = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                 enable_auto_commit=False, fetch_max_bytes=16 * 1024 * 1024)
        topic = self.settings.topics.forecasts
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        while not self._stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    doc = orjson.loads(record.value)
                    self.ids[(doc["series"], doc["origin"])].add(doc["forecast_id"])
                    self.origins[doc["origin"]] += 1
                    self.messages += 1
        consumer.close()

    def seen(self, origin: str) -> bool:
        return self.origins.get(origin, 0) > 0

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=30)


@dataclass
class Day:
    """One day of the stream: what is sent (topic, key, value, hostile case or None) and its valid events."""

    messages: list[tuple[str, bytes | None, bytes, str | None]]
    valid: list[dict]
    duplicates: int
    plans: list[dict] = field(default_factory=list)


def build_days(plan: Plan, settings: Settings) -> list[Day]:
    """The stream cut into days, duplicates after their originals, the hostile corpus spread over days 1..."""
    rng = random.Random(plan.seed)
    config = SyntheticConfig(series=plan.series, days=plan.days, seed=plan.seed)
    buckets = Buckets(settings.bucket_seconds)
    by_day: dict[int, list[dict]] = defaultdict(list)
    for doc in generate(config):
        by_day[doc_bucket(doc, buckets)].append(doc)
    first = min(by_day)
    plans_by_day: dict[int, list[dict]] = defaultdict(list)
    for doc in planned_promotions(config, ahead_days=7):  # sent on the day they are issued (the first: earlier)
        plans_by_day[max(first, doc_bucket(doc, buckets))].append(doc)
    corpus = list(hostile(by_day[first][:2000], plan.fuzz, seed=plan.seed))
    spread: dict[int, list] = defaultdict(list)
    for message in corpus:
        spread[rng.randint(1, plan.days - 1)].append(message)
    days = []
    for d in range(plan.days):
        messages: list[tuple[str, bytes | None, bytes, str | None]] = []
        valid, duplicates = [], 0
        for doc in plans_by_day[first + d]:
            topic, key = route(doc, settings.topics)
            messages.append((topic, key, orjson.dumps(doc), None))
        for out in with_faults(by_day[first + d], malformed=0.0, duplicates=plan.duplicates, seed=plan.seed + d):
            assert out.doc is not None
            topic, key = route(out.doc, settings.topics)
            messages.append((topic, key, out.value, None))
            if out.kind == "event":
                valid.append(out.doc)
            else:
                duplicates += 1
        for bad in spread[d]:
            topic, key = rng.choice(settings.topics.inputs), bad.key
            if bad.case in TIME_GUARDED:  # into a partition the first day wrote to: it has a watermark (see fuzz)
                topic, key = route(rng.choice(by_day[first]), settings.topics)
            messages.insert(rng.randint(len(messages) // 10, len(messages)), (topic, key, bad.value, bad.case))
        days.append(Day(messages, valid, duplicates, plans_by_day[first + d]))
    return days


def doc_bucket(doc: dict, buckets: Buckets) -> int:
    ts = doc["ts"]
    return buckets.index(ts if isinstance(ts, int) else round(datetime.fromisoformat(ts).timestamp() * 1000))


class Chaos:
    """One run of a plan on its own servers (see the module docstring)."""

    def __init__(self, plan: Plan, home: Path, endpoints: Endpoints, say: Callable[[str], None] = print) -> None:
        self.plan, self.home, self.endpoints, self.say = plan, home, endpoints, say
        self.settings = chaos_settings(endpoints, home / "tidecast")
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.report = Report()
        self.rng = random.Random(plan.seed)
        self.env = {**env_for(self.settings), "TIDECAST_TORCH_THREADS": "1"}
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.crew = Crew(plan, self.env, self.logs, self.report, say)
        self.buckets = Buckets(self.settings.bucket_seconds)
        # a cluster too (redis+cluster://); replies time out (caller_retries) rather than block on a paused server
        self.redis = redis_client(self.settings, endpoints.redis, caller_retries=True)
        self.store = RedisWindowStore(self.redis, self.settings.topic_prefix)
        self.hostile: set[tuple[str, int, int]] = set()
        self.valid: list[dict] = []
        self._done = threading.Event()
        self._kill_marks: list[int] = []
        self._quiet = threading.Event()  # set while no ingest kill may happen (outages, FLUSHALL)

    # -- servers ----------------------------------------------------------------------------------------------
    def server_pid(self, name: str, needle: str) -> int:
        state = infra.read_state(Settings(home=self.home / "infra"))
        assert state is not None, "the run's servers are not running"
        pid = state["pids"][name]
        assert isinstance(pid, int) and pid > 0 and pid_runs(pid, needle), (name, pid)
        return pid

    def pause(self, name: str, needle: str, seconds: float) -> None:
        """SIGSTOP the server for ``seconds`` (no ingest kill meanwhile: one fault at a time), then SIGCONT."""
        pid = self.server_pid(name, needle)
        self.say(f"  pausing {name} (PID {pid}) for {seconds:g} s")
        self._quiet.set()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
            self._quiet.clear()
        self.report.faults.append(f"{name} paused {seconds:g} s")

    # -- the run ----------------------------------------------------------------------------------------------
    def run(self) -> Report:
        started = time.monotonic()
        plan, settings = self.plan, self.settings
        create_topics(settings.kafka_bootstrap, settings.topics.all, settings.partitions)
        days = build_days(plan, settings)
        total = sum(len(d.valid) for d in days)
        records = total + sum(len(d.plans) for d in days)  # what the store's `ingested` counts: plans too
        self._kill_marks = sorted(self.rng.sample(range(1000, int(total * 0.97)), plan.ingest_kills))
        schedule = self._schedule()
        self.say(f"chaos: {plan.series} series x {plan.days} days, {total:,} events, {plan.fuzz:,} hostile; "
                 f"faults: {schedule}")
        forecasts = Forecasts(settings)
        self.crew.start()
        killer = threading.Thread(target=self._tend, daemon=True)
        killer.start()
        producer = KafkaProducer(**{**producer_config(settings, settings.kafka_bootstrap, "chaos"),
                                    "max_block_ms": 120_000, "delivery_timeout_ms": 180_000})
        first = doc_bucket(days[0].valid[0], self.buckets)
        try:
            for d, day in enumerate(days):
                faults = schedule.get(d, [])
                if "flushall" in faults:  # Redis emptied just before the day's events arrive
                    self._flushall(producer, days, d)
                else:
                    self._produce(producer, day)
                if "broker" in faults:
                    self.pause("kafka", "tansu", plan.broker_outage_s)
                if "redis" in faults:
                    self.pause("redis", "valkey-server", plan.redis_outage_s)
                if "forecaster-now" in faults:
                    time.sleep(self.rng.uniform(0, 0.5))
                    self.crew.kill_forecaster()
                origin = self.buckets.iso(self.buckets.start_ms(first + d))  # the forecasts closing day d - 1
                if d > 0:
                    self._until(lambda o=origin: forecasts.seen(o), f"the forecasts from {origin}",
                                on_first=self.crew.kill_forecaster if "forecaster-at-publish" in faults else None)
                self.say(f"  day {d + 1}/{plan.days}: {len(day.valid):,} events sent"
                         + (f", {', '.join(faults)}" if faults else "")
                         + f"; kills so far {self.report.kills}")
            self._until(lambda: self._stats_ingested() == records, "every event and plan ingested", timeout=300)
            last = self.buckets.iso(self.buckets.start_ms(first + plan.days - 1))
            self._until(lambda: forecasts.seen(last), f"the last forecasts ({last})", timeout=180)
        finally:
            self.crew.terminate()  # before the tending thread ends: the processes it started die with it
            self._done.set()
            killer.join(timeout=10)
            producer.close(timeout=10)
            time.sleep(1.0)  # the last forecasts reach the reader
            forecasts.stop()
        self.report.events, self.valid = total, [doc for day in days for doc in day.valid]
        self.plans = [doc for day in days for doc in day.plans]
        self.report.plans_sent = len(self.plans)
        self.report.duplicates_sent = sum(d.duplicates for d in days)
        self._check(forecasts, first)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _schedule(self) -> dict[int, list[str]]:
        """Which day gets which fault (days 2 .. days-2, so every fault has days before and after it)."""
        plan, rng = self.plan, self.rng
        days = list(range(2, plan.days - 1))
        schedule: dict[int, list[str]] = defaultdict(list)
        for k, day in enumerate(rng.sample(days, plan.forecaster_kills)):  # one a day: each happens
            schedule[day].append("forecaster-at-publish" if k % 2 else "forecaster-now")
        for name, wanted in (("redis", plan.redis_outage_s > 0), ("broker", plan.broker_outage_s > 0),
                             ("flushall", plan.flushall)):
            if wanted:
                schedule[rng.choice(days[len(days) // 4:])].append(name)
        return dict(sorted(schedule.items()))

    def _produce(self, producer: KafkaProducer, day: Day) -> None:
        futures = []
        for topic, key, value, case in day.messages:
            future = producer.send(topic, key=key, value=value)
            if case is not None:
                futures.append(future)
                self.report.hostile_sent += 1
                self.report.hostile_bytes += len(value) + len(key or b"")
        producer.flush()
        for future in futures:
            meta = future.get(timeout=60)
            self.hostile.add((meta.topic, meta.partition, meta.offset))

    def _flushall(self, producer: KafkaProducer, days: list[Day], d: int) -> None:
        """Empty Redis and produce day ``d``: the workers must stop on the lost state; then rebuild, start them
        again and wait until they have re-read the history through day ``d``."""
        self._quiet.set()
        with self.crew.lock:
            self.crew.hold_ingest = self.crew.expect_lost = True
        self.say("  FLUSHALL")
        self.redis.flushall()
        self.report.faults.append("Redis emptied (FLUSHALL)")
        self._produce(producer, days[d])  # the workers find the lost state at their next commit
        self._until(lambda: not self.crew.ingest, "the ingest workers to stop on the lost state", timeout=120)
        rebuild = subprocess.run([*TIDECAST, "rebuild", "--yes"], env=self.env, capture_output=True, timeout=120)
        if rebuild.returncode != 0:
            self.report.crashes.append(f"rebuild exited {rebuild.returncode}: {rebuild.stderr.decode()[-600:]}")
        with self.crew.lock:
            self.crew.hold_ingest = False
        self._until(lambda: len(self.crew.ingest) == self.plan.ingest_workers, "the workers back")
        self._until(lambda: self._stats_ingested() >= sum(len(x.valid) + len(x.plans) for x in days[: d + 1]),
                    "the rebuild to re-read the history")
        with self.crew.lock:
            self.crew.expect_lost = False
        self._quiet.clear()

    def _stats_ingested(self) -> int:
        try:
            return self.store.stats().counters["ingested"]
        except redis.RedisError:
            return -1

    def _tend(self) -> None:
        """On a thread: restart what ended; SIGKILL an ingest worker as the ingested count passes each mark."""
        last_kill = 0.0
        while not self._done.is_set():
            self.crew.tend()
            now = time.monotonic()
            if self._kill_marks and not self._quiet.is_set() and now - last_kill > 1.5:
                ingested = self._stats_ingested()
                if ingested >= self._kill_marks[0] and self.crew.kill_ingest(self.rng):
                    self._kill_marks.pop(0)
                    last_kill = now
            time.sleep(0.05)

    def _until(self, done: Callable[[], bool], what: str, timeout: float = 240,
               on_first: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                self._diagnose()
                raise TimeoutError(f"chaos: waited {timeout:g} s for {what}; logs (and diagnosis.txt) in {self.logs}")
            time.sleep(0.01)
        if on_first is not None:
            on_first()

    def _diagnose(self) -> None:
        """What a stalled run looks like: the processes, the stored offsets and counters, and (with ``CHAOS_PY_SPY``
        naming a py-spy binary) every live process's stacks; to logs/diagnosis.txt."""
        lines = [f"processes: {[(p.kind, p.popen.pid, p.popen.poll()) for p in self.crew.ingest]} "
                 f"forecaster {self.crew.forecaster and self.crew.forecaster.popen.pid}"]
        try:  # the diagnosis must not hide the timeout
            stats = self.store.stats()
            lines.append(f"stored offsets: {stats.offsets}\ncounters: {dict(stats.counters)}")
        except Exception as exc:
            lines.append(f"store: {exc!r}")
        spy = os.environ.get("CHAOS_PY_SPY")
        procs = [*self.crew.ingest, *([self.crew.forecaster] if self.crew.forecaster else [])]
        for proc in procs if spy else []:
            if proc.popen.pid > 0 and proc.popen.poll() is None:
                dump = subprocess.run([spy, "dump", "--pid", str(proc.popen.pid)], capture_output=True, text=True)
                lines.append(f"--- {proc.log.name}\n{dump.stdout}{dump.stderr}")
        (self.logs / "diagnosis.txt").write_text("\n".join(lines))

    def _check_plans(self) -> None:
        """The stored plans against a last-write-wins recount of the plans sent."""
        expected = expected_plans(self.plans, self.buckets)
        self.report.plans = len(expected)
        if not expected:
            return
        first, last = min(b for b, _ in expected), max(b for b, _ in expected)
        stored = {(b, target): entry.values for b, targets in self.store.read_plans(first, last).items()
                  for target, entry in targets.items()}
        self.report.plans_wrong = sum(1 for key, doc in expected.items()
                                      if tuple(stored.get(key, ())) != plan_values(doc))
        self.report.plans_unexpected = len(stored.keys() - expected.keys())

    # -- the checks -------------------------------------------------------------------------------------------
    def _check(self, forecasts: Forecasts, first: int) -> None:
        report, settings = self.report, self.settings
        expected = recount(self.valid, settings.bucket_seconds)
        buckets = sorted({b for b, _ in expected})
        stored = {(b, s): row for b in buckets for s, row in self.store.read_bucket(b).items()}
        report.ingested = self.store.stats().counters["ingested"]
        lost: dict[str, float] = defaultdict(float)
        doubled: dict[str, float] = defaultdict(float)
        for key in expected.keys() | stored.keys():
            want, got = expected.get(key, [0] * 7), stored.get(key, [0] * 7)
            differs = False
            for i, name in {**COUNT_FIELDS, 0: "units", 3: "returned units"}.items():
                gap = want[i] - got[i]
                lost[name] += max(gap, 0)
                doubled[name] += max(-gap, 0)
                differs |= gap != 0
            differs |= abs(want[2] - got[2]) > 1e-9 * max(1.0, abs(want[2]))
            report.windows_differing += differs
        report.lost, report.doubled = dict(lost), dict(doubled)

        self._check_plans()

        dlq = read_dlq_raw(settings, timeout=60.0)
        report.dlq_messages = len(dlq)
        report.dlq_largest_bytes = max((len(raw) for raw in dlq), default=0)
        reasons: dict[str, int] = defaultdict(int)
        sources = set()
        for raw in dlq:
            doc = orjson.loads(raw)
            source = doc["source"]
            sources.add((source["topic"], source["partition"], source["offset"]))
            if not doc.get("reason"):
                report.dlq_without_reason += 1
            reasons[doc.get("reason", "").split(":")[0][:40]] += 1
        report.dlq_reasons = dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:12])
        report.hostile_missing_from_dlq = len(self.hostile - sources)

        active: dict[str, int] = {}
        for b, series in sorted(expected):
            active[series] = max(active.get(series, b), b)
        last_closed = first + self.plan.days - 2
        missing = 0
        for t in range(first, last_closed + 1):
            origin = self.buckets.iso(self.buckets.start_ms(t + 1))
            want_series = {s for (b, s) in expected if b <= t and b >= t - settings.retention + 1}
            missing += sum(1 for s in want_series if (s, origin) not in forecasts.ids)
        report.origins = last_closed - first + 1
        report.forecasts_missing = missing
        report.forecasts_published = forecasts.messages
        report.ids_per_forecast_max = max((len(ids) for ids in forecasts.ids.values()), default=0)


def plan_values(doc: dict) -> tuple:
    """A plan event's values as the store keeps them (:data:`tidecast.stream.events.PLAN_FIELDS` order)."""
    event = doc.get("event")
    return (doc.get("promo"), doc.get("price"), doc.get("open"), NO_EVENT if "event" in doc and event is None
            else event)


def run(plan: Plan, home: Path, say: Callable[[str], None] = print, cluster: str | None = None) -> Report:
    """Start servers of the run's own under ``home``, run ``plan`` on them, stop them; the report. With
    ``cluster`` (a ``redis+cluster://`` URL) the windows, offsets and checkpoints live on that Redis Cluster
    instead of the run's own valkey-server, which then only the plan's Redis faults could touch: they are
    refused (the cluster's nodes are not paused or emptied here)."""
    if cluster is not None and (plan.flushall or plan.redis_outage_s > 0):
        raise ValueError("a chaos run on a cluster takes the kill cases only (no Redis pause, no FLUSHALL)")
    with infra.running(Settings(home=home / "infra")) as endpoints:
        if cluster is not None:
            endpoints = dataclasses.replace(endpoints, redis=cluster)
        return Chaos(plan, home, endpoints, say).run()
