"""The ingest worker: one of the processes that split the input partitions and feed the windows.

The workers of a topic prefix split the partition numbers among themselves through a membership set in Redis
(:mod:`tidecast.stream.ownership`, :mod:`tidecast.stream.adapters.ingest_members`): each beats every heartbeat
interval (2 s), gives up what the view of the live workers hands to another at once, and takes what two views
agree on; one that stops or dies is counted out after the session timeout (6 s) or at once on a clean stop.
Kafka's consumer-group protocol is not used (the embedded broker wedges groups; see the membership module):
the consumer is assigned its partitions, and the fence on every commit is the stored offset, as before.

Per poll batch and partition: :class:`~tidecast.stream.ingest.PartitionIngestor` classifies the records,
rejects go to the DLQ, and the batch (window deltas + offsets + watermark + counters) is committed to
the store in one atomic call by the :class:`~tidecast.consumers.committer.Committer`. On assignment the
worker seeks every partition to the offset stored in the store, so a crash anywhere neither loses nor
double-counts an event. Kafka offset commits happen too, but only as a courtesy for lag tools.

State the store lost (an offset gone while the partition's other state is there, Redis emptied under a
running worker) or records Kafka deleted before they were ingested stop the worker with
:class:`~tidecast.stream.ingest.StateLost`, counted in the store's ``gaps``; never a silent re-read or skip
(``TIDECAST_ALLOW_GAPS=1`` counts and skips deleted records). Deleted records show as kafka-python's
``OffsetOutOfRangeError`` (the consumer's reset policy is "none", so Kafka never moves it on by itself), at
startup (the stored offset is below the log start) or mid-run (retention overtook the worker), or as a first
record past the stored offset. At startup the worker warns when the input topics keep records for less than the
windows span.

Outages: Redis calls and the DLQ acknowledgements ride out an outage of up to ``TIDECAST_OUTAGE_TIMEOUT``
(:mod:`tidecast.stream.adapters.retry`). A worker that lost its membership (paused past the session timeout,
say) finds its commits fenced: it drops what it had not committed, reloads its partitions from the store and
carries on as a member again. A failure to load a partition taken marks the partitions for a reload from the
store before the next batch.

The topics a worker reads, under a topic prefix:

>>> Settings(topic_prefix="t.").topics.ingested
('t.clicks', 't.sales', 't.plans')
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)
from kafka.structs import OffsetAndMetadata

from tidecast.config import Settings
from tidecast.consumers.assignment import Assignment
from tidecast.consumers.committer import Committer, Fenced
from tidecast.consumers.dlq import DlqAck, dlq_key, dlq_message, record_error
from tidecast.consumers.ingest_progress import IngestProgress
from tidecast.stream.adapters.kafka_clients import (
    consumer_config,
    producer_config,
    retention_problems,
    topic_retentions,
)
from tidecast.stream.adapters.retry import REDIS_ERRORS, Outage, RetryingStore
from tidecast.stream.events import Bounds
from tidecast.stream.ingest import IngestBatch, PartitionIngestor, RecordsDeleted, Reject, StateLost
from tidecast.stream.ownership import Membership
from tidecast.stream.timebuckets import Buckets
from tidecast.stream.window_store import WindowStore

log = logging.getLogger(__name__)

class IngestWorker:
    """Consume, validate, bucket and commit until stopped or idle (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        store: WindowStore,
        members: Membership,
        max_poll_records: int = 5000,
        on_progress: Callable[[IngestProgress], None] | None = None,
        member_is_dead: Callable[[str], bool] = lambda member: False,
    ) -> None:
        self.settings = settings
        timeout = settings.outage_timeout_seconds
        self.store = RetryingStore(store, Outage("Redis", timeout, REDIS_ERRORS))
        self.assignment = Assignment(members, settings, member_is_dead)
        self.kafka_acks = Outage("Kafka (DLQ acknowledgements)", timeout, (KafkaTimeoutError,))
        self.buckets = Buckets(settings.bucket_seconds)
        self.on_progress = on_progress
        self.progress = IngestProgress()
        self.max_poll_records = max_poll_records
        self.ingestors: dict[TopicPartition, PartitionIngestor] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.last_record: dict[TopicPartition, float] = {}
        # reset "none": every partition is seeked explicitly (the stored offset, or the beginning when nothing is
        # stored), so an out-of-range position means Kafka deleted records this worker had not read (_out_of_range)
        self.consumer = KafkaConsumer(**consumer_config(settings, bootstrap, settings.consumer_group, reset="none"))
        outage_ms = settings.outage_timeout_seconds * 1000
        self.producer = KafkaProducer(**{
            **producer_config(settings, bootstrap, "tidecast-dlq"),
            # a send blocks (no metadata: the broker is away) and is retried by the producer for the outage time
            "max_block_ms": outage_ms,
            "delivery_timeout_ms": max(120_000, outage_ms + 30_000),
        })
        self.committer = self._new_committer()
        self._stop = False
        self._reload = False
        """Set when a commit was fenced or a partition taken could not be loaded: reload every held partition."""
        self._failure: BaseException | None = None
        """An error that must stop the worker, raised by the poll loop (a callback must not raise it)."""
        self.bounds = Bounds(settings.max_qty, settings.max_price)
        """Lost state found on assignment: the loop stops and :meth:`run` raises it."""
        self.retention_warnings = check_retention(settings, bootstrap)

    def stop(self) -> None:
        """Ask the loop to finish after the current batch (safe from a signal handler)."""
        self._stop = True

    def run(
        self, until_idle: float | None = None, tick: Callable[[], None] | None = None, tick_every: float = 0.2
    ) -> IngestProgress:
        """Consume until :meth:`stop` or until no record arrived for ``until_idle`` seconds.

        ``tick`` runs on this thread between polls, at most every ``tick_every`` seconds (``tidecast run``
        closes buckets there, so forecasting never falls far behind ingest).
        """
        self._last_activity = time.monotonic()
        last_report = last_kafka_commit = last_tick = 0.0
        try:
            self.assignment.start({topic: self.consumer.partitions_for_topic(topic)
                                   for topic in self.settings.topics.ingested})
            while not self._stop:
                self._follow_membership()
                self._recover()
                try:
                    polled = self._poll()
                except OffsetOutOfRangeError as exc:  # records deleted before they were read (retention)
                    self._out_of_range(exc)
                    continue
                except NoOffsetForPartitionError:  # a partition left unseeked: lost state, or a reload is due
                    if self._failure is None and not self._reload:
                        raise
                    continue  # _recover() raises the failure or reloads (seeks) the partitions
                if self._recover():
                    continue  # the reload seeked every partition back to the store: these records come again
                now = time.monotonic()
                try:
                    if polled:
                        self._last_activity = now
                        for tp, records in polled.items():
                            self._ingest(tp, records)
                    elif until_idle is not None and now - self._last_activity >= until_idle and self.ingestors:
                        self.committer.drain()  # idle only once all is committed: a fenced batch comes again
                        break
                    if now - last_kafka_commit >= 1.0:
                        self._advance_idle(now)
                        self._commit_kafka()
                        self._positions()
                        last_kafka_commit = now
                except (Fenced, IllegalStateError) as exc:  # a partition went to another member
                    self._commit_failed(exc)
                    continue
                if tick is not None and now - last_tick >= tick_every:
                    tick()
                    last_tick = now
                if self.on_progress and now - last_report >= 0.5:
                    self.on_progress(self.progress)
                    last_report = now
            self._recover()
            try:
                self.committer.drain()
            except Fenced as exc:  # its partition is another member's now, which goes on from the store
                log.warning("stopping: %s; the member that owns it now carries on", exc)
                self.committer = self._new_committer()
            else:
                self._commit_kafka()
            if self._failure is not None:  # recorded while draining (a callback's reload found lost state)
                raise self._failure
        finally:
            self.close()
        if self.on_progress:
            self.on_progress(self.progress)
        return self.progress

    def _new_committer(self) -> Committer:
        return Committer(self.store, on_commit=self._committed, acks=self.kafka_acks)

    def _commit_failed(self, exc: BaseException) -> None:
        """A commit failed. Fenced (the partition is another member's): drop every speculative state and reload
        from the store; anything else stops the worker (raised by the poll loop). Never raises."""
        old, self.committer = self.committer, self._new_committer()
        with contextlib.suppress(BaseException):  # the failure is ``exc``, handled below
            old.close()  # batches after the failure are dropped, not committed
        if isinstance(exc, (Fenced, IllegalStateError)):
            log.warning("lost a partition (%s): reloading the assigned partitions from the store", exc)
            self._reload = True
        elif self._failure is None:
            self._failure = exc

    def _recover(self) -> bool:
        """Raise a failure a callback recorded; reload the partitions if asked to. True if they were reloaded."""
        if self._failure is not None:
            raise self._failure
        if not self._reload:
            return False
        self._reload = False
        held = list(self.consumer.assignment())
        self.ingestors.clear()
        self.committed.clear()
        self.last_record.clear()
        self._assigned(held)
        return True

    def close(self) -> None:
        try:
            self.committer.close()
        finally:
            try:
                self.producer.close(timeout=10)
                self.consumer.close(autocommit=False)
            finally:
                self.assignment.close()

    def _follow_membership(self) -> None:
        """Apply the change the newest membership view asks for (:meth:`Assignment.follow`): forget what was
        dropped or given up (draining the commits of what was given up), assign what is held, load and seek
        what was taken."""
        change = self.assignment.follow()
        if change is None:
            return
        if change.dropped:
            self._revoked(change.dropped, lost=True)
            log.warning("membership lapsed: gave up every partition, taking them again from the next views")
        if change.given_up:
            self._revoked(change.given_up)
        held = self.assignment.held()
        log.info("holding %d topic-partitions", len(held))
        self.consumer.assign(held)
        try:
            self._assigned(change.taken)
        except Exception as exc:  # Redis away past the retries, say: the reload tries again (and stops)
            log.warning("could not load the partitions taken (%s): retrying before the next batch", exc)
            self._reload = True

    def _poll(self) -> dict:
        """The next records of the held partitions; none (after the poll's wait) while nothing is held."""
        if not self.consumer.assignment():
            time.sleep(0.2)
            return {}
        return self.consumer.poll(timeout_ms=200, max_records=self.max_poll_records)

    def _ingest(self, tp: TopicPartition, records: list) -> None:
        self.last_record[tp] = time.monotonic()
        ingestor = self.ingestors[tp]
        started = time.perf_counter()
        try:
            batch = ingestor.apply(records)
        except StateLost as exc:  # records deleted before they were ingested
            raise self._lost(tp, exc) from None
        self.progress.batch_seconds.append(time.perf_counter() - started)
        acks = [self._send_dlq(r) for r in batch.rejects] if batch.rejects else []
        ingestor.adopt(batch)  # speculative: if the commit fails the worker stops and restarts from the store
        self.committer.submit(batch, acks)
        self.progress.add(batch)

    def _send_dlq(self, reject: Reject) -> DlqAck:
        cap = self.settings.dlq_max_bytes
        source = (reject.topic, reject.partition, reject.offset)
        try:
            value = dlq_message(reject, _wall_ms(), cap)
            future = self.producer.send(self.settings.topics.dlq, key=dlq_key(reject, cap), value=value)
        except Exception as exc:
            if not record_error(exc):
                raise
            return DlqAck(None, self.progress, source, error=exc)
        return DlqAck(future, self.progress, source)

    def _advance_idle(self, now: float) -> None:
        """Let partitions without records for TIDECAST_IDLE_TIMEOUT follow the others' event time, once this worker
        has read everything they hold (see :meth:`_caught_up`)."""
        timeout = self.settings.idle_timeout_seconds
        idle = [tp for tp in self.ingestors
                if now - self.last_record.get(tp, now) >= timeout and self._caught_up(tp)]
        if not idle:
            return
        self.committer.drain()
        known = self.store.max_event_times()
        if not known:
            return
        newest = max(known.values())
        for tp in idle:
            batch = self.ingestors[tp].advance(newest, self.consumer.position(tp))
            if batch is not None:
                self.ingestors[tp].adopt(batch)
                self.committer.submit(batch)

    def _caught_up(self, tp: TopicPartition) -> bool:
        """Whether the worker has read all that ``tp`` holds: its position at the high watermark of the last fetch.

        A partition with a backlog is never idle, however long its records take to come: catching up (after a
        rebuild or a restart) the consumer returns the partitions' records in turns, and one left waiting past the
        idle timeout would otherwise be moved to the others' event time and its whole backlog counted ``late``
        (the chaos run's rebuild lost a third of its events that way). No fetch answered yet: not caught up."""
        high = self.consumer.highwater(tp)
        return high is not None and self.consumer.position(tp) >= high

    def _committed(self, batch: IngestBatch, seconds: float) -> None:
        self.committed[TopicPartition(batch.topic, batch.partition)] = batch.next_offset
        self.progress.last_commit_at = time.monotonic()
        self.progress.commit_seconds.append(seconds)

    def _positions(self) -> None:
        """Each held partition's lag behind its high watermark (of the last fetch) and its event-time watermark,
        for the metrics; partitions given up are dropped."""
        lag, marks = {}, {}
        for tp, ingestor in list(self.ingestors.items()):
            high = self.consumer.highwater(tp)
            with contextlib.suppress(KafkaError):  # a partition being reassigned or reset: no figure this time
                position = self.consumer.position(tp) if high is not None else None
                if position is not None:
                    lag[(tp.topic, tp.partition)] = max(0, high - position)
            if ingestor.max_ts_ms is not None:
                marks[(tp.topic, tp.partition)] = ingestor.max_ts_ms
        self.progress.lag, self.progress.watermark_ms = lag, marks

    def _commit_kafka(self) -> None:
        offsets = {
            tp: OffsetAndMetadata(offset, "", -1) for tp, offset in list(self.committed.items()) if tp in self.ingestors
        }
        if offsets:
            self.consumer.commit_async(offsets)

    def _assigned(self, assigned: list[TopicPartition]) -> None:
        self._last_activity = time.monotonic()
        for tp in assigned:
            self.last_record[tp] = self._last_activity
            state = self.store.load_partition(tp.topic, tp.partition)
            if state.lost is not None:  # raising here would reach run() as a KafkaError: stop the loop instead
                self.consumer.pause(tp)
                self._failure = self._failure or self._lost(tp, StateLost(state.lost, gap=f"{tp.topic}@lost"))
                self._stop = True
                continue
            self.ingestors[tp] = PartitionIngestor(
                tp.topic,
                tp.partition,
                self.buckets,
                self.settings.lateness_seconds * 1000,
                self.settings.retention,
                state,
                bounds=self.bounds,
                now_ms=_wall_ms,
                max_future_ms=self.settings.max_future_seconds * 1000,
                allow_gaps=self.settings.allow_gaps,
            )
            if state.next_offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, state.next_offset)

    def _out_of_range(self, exc: OffsetOutOfRangeError) -> None:
        """Kafka no longer holds the fetch position of some partitions (kafka-python raises this from ``poll``
        with ``{partition: offset}`` as its argument, the reset policy being "none"): retention deleted records
        before this worker read them. Without ``allow_gaps`` the gap is counted in the store and
        :class:`~tidecast.stream.ingest.RecordsDeleted` raised; with it the partition goes on from the log
        start and its next batch carries the gap (counted with it in one commit). Partitions this worker does
        not hold (a reload is due) are left to the reload's seek."""
        reached = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        ours = {tp: offset for tp, offset in reached.items() if tp in self.ingestors}
        if not ours:
            if self._reload or self._failure is not None:
                return  # _recover() seeks them again (or stops)
            raise exc  # not a partition this worker reads, and no reload to explain it: not retention
        starts = self.consumer.beginning_offsets(list(ours))
        for tp, offset in ours.items():
            ingestor, start = self.ingestors[tp], starts[tp]
            if ingestor.next_offset is None:  # nothing read yet: begin where the log begins now, as at startup
                log.info("%s:%d: the log start moved to %d before anything was read", tp.topic, tp.partition, start)
                self.consumer.seek_to_beginning(tp)
                continue
            deleted = RecordsDeleted(tp.topic, tp.partition, offset, start)
            if not self.settings.allow_gaps or start <= offset:
                raise self._lost(tp, deleted)
            log.warning("%s:%d: Kafka deleted records %d to %d (%d) before they were ingested; TIDECAST_ALLOW_GAPS "
                        "is set: going on from the log start, the gap is counted in the store's gaps",
                        tp.topic, tp.partition, offset, start - 1, start - offset)
            ingestor.expect_gap()  # the next batch starts past next_offset: it records the gap when committed
            self.consumer.seek(tp, start)

    def _lost(self, tp: TopicPartition, exc: StateLost) -> StateLost:
        """Count the gap in the store (once per gap); returns ``exc`` to raise (the CLI prints it)."""
        record_gap = getattr(self.store, "record_gap", None)  # both stores have it; the WindowStore port does not
        if exc.gap is not None and record_gap is not None:
            record_gap(tp.partition, exc.gap, exc.records)
        return exc

    def _revoked(self, revoked: list[TopicPartition], lost: bool = False) -> None:
        """Commit what was submitted (unless the partitions are ``lost``: another member has them already), then
        forget them. Never raises: a failed commit marks the worker for a reload (see :meth:`_commit_failed`)."""
        try:
            if lost:
                raise Fenced(f"{len(revoked)} partition(s) lost with the membership")
            self.committer.drain()
        except BaseException as exc:
            self._commit_failed(exc)
        for tp in revoked:
            self.ingestors.pop(tp, None)
            self.committed.pop(tp, None)
            self.last_record.pop(tp, None)


def check_retention(settings: Settings, bootstrap: str) -> list[str]:
    """Warn about input topics that keep records for less than the Redis windows span (TIDECAST_RETENTION x
    TIDECAST_BUCKET): a rebuild could not re-read them. A broker that reports no ``retention.ms`` (the embedded
    one) is noted and not checked. Returns the warnings."""
    topics = list(settings.topics.inputs)
    try:
        found = topic_retentions(bootstrap, topics, settings)
    except Exception as exc:  # the check is advice: a broker without DescribeConfigs must not stop ingest
        log.info("could not read the input topics' retention.ms (%s): not checked", exc)
        return []
    unknown = [topic for topic, ms in found.items() if ms is None]
    if unknown:
        log.info("the broker reports no retention.ms for %s: their retention is not checked", ", ".join(unknown))
    warnings = retention_problems(found, settings)
    for warning in warnings:
        log.warning("%s: records deleted by Kafka before they were ingested stop ingest (gaps), and "
                    "`tidecast rebuild` cannot re-read them; raise the topic's retention.ms", warning)
    return warnings


def _wall_ms() -> int:
    return int(time.time() * 1000)
