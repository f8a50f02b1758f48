"""The forecasting loop through its in-memory ports: close order, resume from a checkpoint, replay after a
crash between publish and checkpoint, refusal of a checkpoint written under other settings, and a pinned
forecast (a change that moves the forecasts must show up here)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import orjson
import pytest
import torch

from tidecast.models import checkpoint
from tidecast.models.baselines import BASELINE_NAMES, make_baseline
from tidecast.models.baselines.panel_adapter import BaselineLearner
from tidecast.models.learner import LearnerConfig, OnlineLearner
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.forecast_message import ForecastBatch, forecast_id
from tidecast.stream.forecaster import CheckpointMismatch, Forecaster, ForecasterConfig
from tidecast.stream.ingest import PartitionIngestor, Record
from tidecast.stream.ports import MemoryCheckpoints, MemorySink
from tidecast.stream.timebuckets import Buckets, to_iso
from tidecast.stream.window_store import MemoryWindowStore

torch.set_num_threads(1)

DAY = 86_400
TOPIC = "sales"
SMALL = LearnerConfig(horizon=3, lags=7, aux_lags=3, scale_window=7, hidden=16, batch_size=64,
                      replay_capacity=256, replay_add=32, sku_buckets=256, store_buckets=16)
CONFIG = ForecasterConfig(bucket_seconds=DAY, lateness_seconds=0, retention=30, quantiles=SMALL.quantiles,
                          inputs=(f"{TOPIC}:0",))


def filled_store(days: int = 30) -> MemoryWindowStore:
    """Six synthetic series (sales only) committed to one partition, as the ingest would."""
    store = MemoryWindowStore()
    docs = generate(SyntheticConfig(series=6, days=days, seed=3, clicks=False))
    records = [Record(i, orjson.dumps(doc)) for i, doc in enumerate(docs)]
    ingestor = PartitionIngestor(TOPIC, 0, Buckets(DAY), 0, CONFIG.retention, store.load_partition(TOPIC, 0))
    batch = ingestor.apply(records)
    assert store.commit(batch)
    return store


def forecaster(store, checkpoints=None, sink=None, config=CONFIG, learner_config=SMALL) -> Forecaster:
    return Forecaster(config, store, OnlineLearner(learner_config), sink or MemorySink(),
                      checkpoints or MemoryCheckpoints(), checkpoint.dumps, checkpoint.loads, clock=lambda: 0.0)


def published(sink: MemorySink) -> dict[int, tuple[int, list[str], np.ndarray, np.ndarray]]:
    """origin ms -> (model version, series, quantiles, means) of every publish, the last one winning."""
    return {batch.origin_ms: (batch.model_version, series, values, mean)
            for batch, series, values, mean in sink.published}


class Recorder:
    """A learner, sink and checkpoint store in one, writing down the order of the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.model_version, self.min_history, self.horizon = 0, 2, 1

    def learn(self, history, first_seen, stores, skus, t, bucket_seconds):
        self.calls.append(("learn", t))
        self.model_version += 1
        return {}

    def forecast(self, history, first_seen, stores, skus, t, bucket_seconds):
        self.calls.append(("forecast", t))
        return np.zeros((len(history), 1, 3), np.float32), np.zeros((len(history), 1), np.float32)

    def publish(self, batch: ForecastBatch, series, values, mean, plans=None) -> int:
        self.calls.append(("publish", Buckets(DAY).index(batch.origin_ms)))
        return len(series)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def load(self) -> bytes | None:
        return None

    def save(self, blob: bytes) -> None:
        self.calls.append(("checkpoint", orjson.loads(blob)["last_closed"]))


def test_buckets_close_in_order_learn_forecast_publish_checkpoint() -> None:
    store, spy = filled_store(days=6), Recorder()
    loop = Forecaster(CONFIG, store, spy, spy, spy, orjson.dumps, orjson.loads)
    reports = loop.step()
    first = min(store.buckets())
    closed = [report.bucket for report in reports]
    assert closed == list(range(first, first + len(closed))) and len(closed) >= 4
    # the newest bucket stays open: the watermark (max event time, lateness 0) is inside it
    assert loop.last_closed == max(store.buckets()) - 1
    expected = [(stage, t if stage != "publish" else t + 1) for t in closed
                for stage in ("learn", "forecast", "publish", "checkpoint")]
    assert spy.calls == expected
    assert loop.step() == []  # nothing new: nothing closes twice


def test_resume_from_a_checkpoint_continues_exactly() -> None:
    store = filled_store()
    straight = MemorySink()
    forecaster(store, sink=straight).step()

    saved, first_half = MemoryCheckpoints(), MemorySink()
    forecaster(store, saved, first_half).step(limit=12)
    second_half = MemorySink()
    resumed = forecaster(store, saved, second_half)  # a new process: learner, panel and clock from the checkpoint
    resumed.step()

    expected, got = published(straight), {**published(first_half), **published(second_half)}
    assert got.keys() == expected.keys() and len(published(second_half)) >= 10
    for origin, (version, series, values, mean) in expected.items():
        assert (got[origin][0], got[origin][1]) == (version, series)
        np.testing.assert_array_equal(got[origin][2], values)
        np.testing.assert_array_equal(got[origin][3], mean)


class CrashingCheckpoints(MemoryCheckpoints):
    """Dies once, on the ``crash_at``-th save: that close was published but not checkpointed."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at

    def save(self, blob: bytes) -> None:
        if self.saves + 1 == self.crash_at:
            self.crash_at = 0
            raise RuntimeError("killed between publish and checkpoint")
        super().save(blob)


def test_a_crash_between_publish_and_checkpoint_republishes_the_same_forecasts() -> None:
    store = filled_store()
    checkpoints, before = CrashingCheckpoints(crash_at=8), MemorySink()
    with pytest.raises(RuntimeError, match="killed"):
        forecaster(store, checkpoints, before).step()
    lost = before.published[-1]  # published, never checkpointed
    after = MemorySink()
    forecaster(store, checkpoints, after).step(limit=1)
    again = after.published[0]
    assert (again[0].origin_ms, again[0].model_version, again[1]) == (lost[0].origin_ms, lost[0].model_version, lost[1])
    np.testing.assert_array_equal(again[2], lost[2])
    np.testing.assert_array_equal(again[3], lost[3])
    origin = to_iso(lost[0].origin_ms)
    assert [forecast_id(s, origin, DAY) for s in again[1]] == [forecast_id(s, origin, DAY) for s in lost[1]]


def test_forecast_ids_survive_a_lost_checkpoint() -> None:
    """Redis lost the checkpoint: a fresh model (version from 0) re-closes a bucket; its forecasts keep their ids,
    so consumers drop them as duplicates."""
    store = filled_store()
    before, after = MemorySink(), MemorySink()
    forecaster(store, sink=before).step()
    forecaster(store, sink=after).step()  # fresh checkpoints: as after FLUSHALL of the checkpoint key
    first, second = before.published[-1], after.published[-1]
    assert first[0].origin_ms == second[0].origin_ms
    origin = to_iso(first[0].origin_ms)
    ids = [fid for _, value in first[0].messages(first[1], first[2], first[3])
           for fid in [orjson.loads(value)["forecast_id"]]]
    assert ids == [forecast_id(s, origin, DAY) for s in first[1]]
    again = [orjson.loads(value)["forecast_id"] for _, value in second[0].messages(second[1], second[2], second[3])]
    assert again == ids
    other = replace(CONFIG, lineage="shop-eu.forecaster:all")  # another forecaster's ids differ
    assert forecast_id(first[1][0], origin, DAY, other.lineage) != ids[0]


@pytest.mark.parametrize(("config", "learner_config", "named"), [
    (replace(CONFIG, bucket_seconds=3600), SMALL, "TIDECAST_BUCKET"),
    (replace(CONFIG, quantiles=(0.25, 0.5, 0.75)), replace(SMALL, quantiles=(0.25, 0.5, 0.75)), "TIDECAST_QUANTILES"),
    (CONFIG, replace(SMALL, horizon=5), "TIDECAST_HORIZON"),
])
def test_a_checkpoint_written_under_other_settings_is_refused(config, learner_config, named) -> None:
    store, saved = filled_store(days=10), MemoryCheckpoints()
    forecaster(store, saved).step()
    with pytest.raises(CheckpointMismatch, match=named):
        forecaster(store, saved, config=config, learner_config=learner_config)


def test_a_checkpoint_of_another_format_is_refused() -> None:
    saved = MemoryCheckpoints()
    saved.save(checkpoint.dumps({"format": "tidecast.forecaster/1", "last_closed": 3}))
    with pytest.raises(CheckpointMismatch, match="another tidecast version"):
        forecaster(filled_store(days=3), saved)


def test_a_learner_state_of_another_format_is_refused_like_a_checkpoint() -> None:
    store, saved = filled_store(days=10), MemoryCheckpoints()
    forecaster(store, saved).step()
    state = checkpoint.loads(saved.load())
    state["learner"]["format"] = "tidecast.learner/2"  # written before the learner's inputs changed
    saved.save(checkpoint.dumps(state))
    with pytest.raises(CheckpointMismatch, match="learner/2"):  # the CLI: exit 2 naming the key, no traceback
        forecaster(store, saved)


# The forecasts of the last close of filled_store() with SMALL, seed 0, pinned when the code was reorganised
# (issue 8: behaviour unchanged). Quantiles and means are compared to 1e-4 relative.
# Re-pinned for issue 10: the dormancy inputs widen the input layer (other initial weights, so other means)
# and the quantiles are calibrated online (models/calibration.py); on these 6 synthetic series and 29 closes
# the offsets widened the band (p10 0 where it was 1-2), the medians moved by at most one unit.
# Re-pinned again for issue 10 (published quantiles): p10 and p90 are no longer rounded to whole counts, the
# median still is (docs/architecture.md, "Published quantiles"), and the calibration tracks the published
# values with the series' band. The medians are unchanged; p10 and p90 moved by under a unit from their old
# rounded values. The means moved: the mean head now corrects each series' recent mean instead of its scale
# (LearnerConfig.mean_prior); s1:sku0001 sold nothing in its last 10 buckets, and its mean went 0.72 -> 0.02.
# Re-pinned for issue 10 (calibration rounding): the calibrator's offsets had moved only when a float64 sum
# and its float32 twin rounded alike, which kept bands too wide. Now p10 rose and p90 fell by up to 2.7 units
# here; medians and means are unchanged.
# Re-pinned again (issue 10): the day of the month joined the calendar inputs (other initial weights) and the
# base rate went 1e-3 -> 2e-3; after these 29 closes the medians are 0-3 units lower, the means 5-30% higher.
# Re-pinned again (issue 10): the calibration meets each label with the forecast published for it, in steps
# scaled by the size of the errors (one label counting at most 5 times that size); p10 and p90 moved by under
# 1.4 units, medians and means are unchanged.
PINNED_SERIES = ["s0:sku0000", "s0:sku0001", "s1:sku0000", "s1:sku0001", "s2:sku0000", "s3:sku0000"]
PINNED_QUANTILES = [
    [[0.0, 5, 12.9136], [0.0, 4, 16.4346], [0.0, 4, 17.317]],
    [[0.0, 2, 5.64328], [0.0, 1, 6.72547], [0.0, 2, 6.99258]],
    [[0.0, 2, 5.6289], [0.0, 1, 6.52622], [0.0, 2, 6.64798]],
    [[0.0, 0, 1.24022], [0.0, 0, 1.57727], [0.0, 0, 1.46778]],
    [[0.0, 1, 1.56808], [0.0, 1, 1.87877], [0.0, 1, 1.8184]],
    [[0.0, 7, 18.8108], [0.0, 5, 24.4112], [0.0, 6, 25.1801]],
]
PINNED_MEANS = [
    [8.48166, 8.8716, 9.37639], [2.41757, 2.61433, 2.84076], [2.38776, 2.55712, 2.69499],
    [0.0182999, 0.023856, 0.0258328], [0.148702, 0.174311, 0.184303], [12.8479, 13.5583, 14.2517],
]


def test_pinned_forecast() -> None:
    sink = MemorySink()
    forecaster(filled_store(), sink=sink).step()
    batch, series, values, mean = sink.published[-1]
    order = np.argsort(series)
    assert [series[i] for i in order] == PINNED_SERIES
    assert batch.model_version == 29
    np.testing.assert_allclose(values[order], np.asarray(PINNED_QUANTILES), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean[order], np.asarray(PINNED_MEANS), rtol=1e-4)


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_every_baseline_runs_behind_the_loop_and_resumes(name: str) -> None:
    """The learner port is one interface: each baseline (through BaselineLearner) closes, checkpoints and
    resumes like the online learner."""

    def baseline_loop(store, checkpoints, sink) -> Forecaster:
        extra = {"num_boost_round": 5, "refit_every": 10, "num_threads": 1} if name == "lightgbm" else {}
        learner = BaselineLearner(make_baseline(name, season=7, quantiles=SMALL.quantiles, horizon=SMALL.horizon,
                                                **extra))
        return Forecaster(CONFIG, store, learner, sink, checkpoints, checkpoint.dumps, checkpoint.loads,
                          clock=lambda: 0.0)

    store, saved, sink = filled_store(days=20), MemoryCheckpoints(), MemorySink()
    reports = baseline_loop(store, saved, sink).step(limit=8)
    assert [r.bucket for r in reports] == list(range(reports[0].bucket, reports[0].bucket + 8))
    resumed = baseline_loop(store, saved, sink)
    assert resumed.last_closed == reports[-1].bucket
    more = resumed.step()
    assert more and more[0].bucket == reports[-1].bucket + 1
    for _, series, values, mean in sink.published:
        assert values.shape == (len(series), SMALL.horizon, len(SMALL.quantiles)) and mean.shape == values.shape[:2]
        assert np.isfinite(values).all() and (values >= 0).all() and (np.diff(values, axis=-1) >= 0).all()


def test_after_a_downtime_trimmed_buckets_are_skipped_and_never_learned() -> None:
    """Days 0..9 closed, then the forecaster is down while 70 more days arrive; the store keeps 30 buckets.

    ::

        closed      down: trimmed from the store       retained (30)
        [0 .. 8]    [9 ............ 48]                [49 ........ 78] 79 open
                                                        ^ first close after the jump; learning resumes
                                                          once the panel (length 2 here) is all retained
    """
    store, spy = MemoryWindowStore(), Recorder()
    buckets = Buckets(DAY)
    ingestor = PartitionIngestor(TOPIC, 0, buckets, 0, CONFIG.retention, store.load_partition(TOPIC, 0))

    def sell(days: range) -> None:
        records = [Record((ingestor.next_offset or 0) + i,
                          orjson.dumps({"event_id": f"e{d}", "type": "sale", "ts": buckets.start_ms(d) + 1, "sku": "A",
                                        "qty": 1}))
                   for i, d in enumerate(days)]
        batch = ingestor.apply(records)
        assert store.commit(batch)
        ingestor.adopt(batch)

    loop = Forecaster(CONFIG, store, spy, spy, spy, orjson.dumps, orjson.loads)
    sell(range(20_000, 20_010))
    assert [r.bucket for r in loop.step()][-1] == 20_008
    sell(range(20_010, 20_080))
    reports = loop.step()
    retained = 20_079 - CONFIG.retention
    assert store.buckets()[0] == retained  # what the ingest kept
    assert reports[0].bucket == retained and reports[0].skipped == retained - 20_009
    assert sum(r.skipped for r in reports) == reports[0].skipped
    learned = [t for stage, t in spy.calls if stage == "learn"]
    assert [t for t in learned if t > 20_008] == list(range(retained + spy.min_history - 1, 20_079))
    assert reports[0].learn["skipped"] and "trimmed" in reports[0].learn["reason"]


def test_a_stop_request_ends_a_catch_up_between_two_closes() -> None:
    store, spy = filled_store(days=10), Recorder()
    loop = Forecaster(CONFIG, store, spy, spy, spy, orjson.dumps, orjson.loads)
    reports = loop.step(stop=lambda: len(spy.calls) >= 8)  # two closes of four calls each
    assert len(reports) == 2 and loop.last_closed == reports[-1].bucket
    assert len(loop.step()) >= 5  # the rest closes on the next step, in order


def test_a_long_run_of_empty_buckets_is_held_until_an_operator_allows_more() -> None:
    """Sales on days 0..4, then one event on day 100: buckets 5..99 are empty. The loop closes ten of them,
    then holds, across a restart too, until allowed."""
    config = replace(CONFIG, retention=200, max_empty_buckets=10)
    store, buckets = MemoryWindowStore(), Buckets(DAY)
    ingestor = PartitionIngestor(TOPIC, 0, buckets, 0, config.retention, store.load_partition(TOPIC, 0))
    days = [*range(20_000, 20_005), 20_100]
    batch = ingestor.apply([Record(i, orjson.dumps({"event_id": f"e{d}", "type": "sale", "ts": buckets.start_ms(d),
                                                    "sku": "A", "qty": 1})) for i, d in enumerate(days)])
    assert store.commit(batch)
    saved = MemoryCheckpoints()
    loop = forecaster(store, saved, config=config)
    closed = [r.bucket for r in loop.step()]
    assert closed == list(range(20_000, 20_015)) and loop.held is not None and "10 empty buckets" in loop.held
    assert loop.step() == []  # still held
    again = forecaster(store, saved, config=config)  # a restart does not reset the run
    assert again.step() == [] and again.held is not None
    again.allow_empty(5)
    assert [r.bucket for r in again.step()] == list(range(20_015, 20_020)) and again.held is not None
    again.allow_empty(1_000)
    assert again.step()[-1].bucket == 20_099 and again.held is None


def test_a_live_catch_up_publishes_only_forecasts_with_a_target_still_open() -> None:
    """Started on a backlog, the live loop learns every bucket but publishes only the closes whose last target
    (t + H) is still open; the backtest (publish_closed=True) publishes them all."""
    store = filled_store()
    live_sink, backtest_sink = MemorySink(), MemorySink()
    live = forecaster(store, sink=live_sink, config=replace(CONFIG, publish_closed=False))
    reports = live.step()
    through = live.last_closed
    stale = [r.bucket for r in reports if r.stale]
    assert stale == [r.bucket for r in reports if r.bucket + SMALL.horizon <= through] and len(stale) >= 20
    published = [Buckets(DAY).index(batch.origin_ms) - 1 for batch, *_ in live_sink.published]
    assert published == list(range(through - SMALL.horizon + 1, through + 1))
    assert [r.model_version for r in reports] == list(range(1, len(reports) + 1))  # every bucket learned once
    forecaster(store, sink=backtest_sink).step()
    assert len(backtest_sink.published) == len(reports)
    for (a, *rest_a), (b, *rest_b) in zip(live_sink.published, backtest_sink.published[-SMALL.horizon:], strict=True):
        assert (a.origin_ms, a.model_version) == (b.origin_ms, b.model_version)  # the same model either way
        np.testing.assert_array_equal(rest_a[1], rest_b[1])
