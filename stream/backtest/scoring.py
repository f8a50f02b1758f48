"""Scoring every model at each bucket close, in this process (:class:`Lineup`) or a worker (:class:`RemoteLineup`).

See :mod:`tidecast.stream.backtest.engine` for the protocol (steps 1 to 4 at the close of each bucket).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import numpy as np

from tidecast.models.baselines import StreamingBaseline, make_baseline
from tidecast.models.metrics import RunningScales, Scorer, median_index
from tidecast.stream.backtest.config import (
    LIGHTGBM_REFIT,
    TIDECAST,
    BacktestConfig,
)


@dataclass
class Trace:
    """Per bucket: every series' units and tidecast's one-step quantiles and mean for it (report plots)."""

    buckets: list[int] = field(default_factory=list)
    units: list[np.ndarray] = field(default_factory=list)
    step1: list[np.ndarray | None] = field(default_factory=list)
    revenue: np.ndarray = field(default_factory=lambda: np.zeros(0))
    step1_mean: list[np.ndarray | None] = field(default_factory=list)


class Lineup:
    """Models scored in one process: optionally tidecast (its forecasts come from the forecaster) plus some
    baselines (updated here); steps 1 to 4 of the module docstring, one :meth:`close` per bucket."""

    def __init__(
        self, config: BacktestConfig, first_bucket: int, baselines: Sequence[str], with_tidecast: bool = True
    ) -> None:
        self.config = config
        self.first_scored = first_bucket + 1 + config.warmup_origins
        buckets = config.buckets
        self.baselines: dict[str, StreamingBaseline] = {}
        for name in baselines:
            extra: dict = {}
            if name == "lightgbm":
                extra = {
                    "refit_every": LIGHTGBM_REFIT,
                    "start_epoch": buckets.start_ms(first_bucket) // 1000,
                    "bucket_seconds": config.bucket_seconds,
                    "seed": config.seed,
                }
            self.baselines[name] = make_baseline(name, config.season, tuple(config.quantiles), config.horizon, **extra)
        self.names = [TIDECAST] * with_tidecast + list(self.baselines)
        self.scorers = {name: Scorer(config.horizon, tuple(config.quantiles)) for name in self.names}
        self.scales = RunningScales()
        self.mid = median_index(config.quantiles)
        self.timings: dict[str, float] = defaultdict(float)
        self.issued: list[int] = []
        self.unpublished = 0
        self.timeline: dict[str, list[tuple[int, float]]] = {name: [] for name in self.names}
        self._step1: dict[str, np.ndarray] = {}
        self.trace = Trace() if config.trace and with_tidecast else None
        self.forecasts: dict[str, dict[int, np.ndarray]] | None = (
            {name: {} for name in self.names} if config.keep_forecasts else None
        )

    def close(
        self,
        t: int,
        units: np.ndarray,
        revenue: np.ndarray,
        tidecast: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Bucket ``t`` closed with ``units`` and ``revenue`` [S]; ``tidecast`` = (published rows, quantiles
        [n, H, Q], means [n, H])."""
        cfg = self.config
        n = units.size
        started = time.perf_counter()
        with np.errstate(invalid="ignore", divide="ignore"):
            price = np.where((units > 0) & (revenue > 0), revenue / units, np.nan)
        for name, scorer in self.scorers.items():
            scorer.observe(t, units, price)
            prev = self._step1.pop(name, None)
            if prev is not None:
                self.timeline[name].append((t, float(np.mean(np.abs(prev - units[: prev.size])))))
        self.scales.update(units)
        s1, s2 = self.scales.scales()
        self.timings["scoring"] += time.perf_counter() - started

        origin = t + 1
        scored = origin >= self.first_scored
        forecasts: dict[str, np.ndarray] = {}
        means: dict[str, np.ndarray] = {}
        if tidecast is not None:
            started = time.perf_counter()
            published, values, mean = tidecast
            tide = forecasts[TIDECAST] = np.zeros((n, cfg.horizon, len(cfg.quantiles)))
            tide[published] = values
            tide_mean = means[TIDECAST] = np.zeros((n, cfg.horizon))
            tide_mean[published] = mean
            self.unpublished += n - published.size if scored else 0
            self.timings[TIDECAST] += time.perf_counter() - started
        for name, model in self.baselines.items():
            started = time.perf_counter()
            model.update(units)
            forecasts[name] = model.forecast()
            means[name] = model.point_forecast()
            self.timings[name] += time.perf_counter() - started

        if scored:
            started = time.perf_counter()
            self.issued.append(origin)
            for name, f in forecasts.items():
                self.scorers[name].issue(origin, f, s1, s2, means=means[name])
                self._step1[name] = f[:, 0, self.mid].copy()
            self.timings["scoring"] += time.perf_counter() - started
        if self.forecasts is not None:
            for name, f in forecasts.items():
                self.forecasts[name][origin] = f.copy()
        if self.trace is not None and TIDECAST in forecasts:
            tr = self.trace
            tr.buckets.append(t)
            tr.units.append(units.astype(np.float32))
            tr.step1.append(forecasts[TIDECAST][:, 0, :].astype(np.float32))
            tr.step1_mean.append(means[TIDECAST][:, 0].astype(np.float32))
            tr.revenue = np.concatenate([tr.revenue, np.zeros(n - tr.revenue.size)]) + revenue

    def outcome(self) -> dict:
        """Picklable results: metrics per model, timings, timeline, issued origins, kept forecasts."""
        return {
            "models": {name: scorer.result() for name, scorer in self.scorers.items()},
            "timings": dict(self.timings),
            "timeline": self.timeline,
            "issued": self.issued,
            "unpublished": self.unpublished,
            "forecasts": self.forecasts,
        }


class RemoteLineup:
    """A :class:`Lineup` of baselines in a worker process, fed bucket by bucket through a pipe.

    The forecaster and the baselines then use two cores; the scores are computed by the same code either way.
    """

    def __init__(self, config: BacktestConfig, baselines: Sequence[str]) -> None:
        # fork (where there is one) starts at once and needs no importable __main__; Backtest starts the
        # workers before it builds the learner or reads any input. The child never touches torch or rich.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve,
            args=(child, config, tuple(baselines), self.conn),
            daemon=True,
            name="tidecast-backtest-baselines",
        )
        self.process.start()
        child.close()
        self.names = list(baselines)

    def start(self, first_bucket: int) -> None:
        self._send(("start", first_bucket))

    def close(self, t: int, units: np.ndarray, revenue: np.ndarray) -> None:
        self._send(("close", t, units, revenue))

    def outcome(self) -> dict:
        self._send(("end",))
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise RuntimeError("the baseline worker process died") from None
        finally:
            self.stop()
        if kind == "error":
            raise RuntimeError(f"the baseline worker failed:\n{payload}")
        return payload

    def stop(self) -> None:
        """End the worker (at once if it is still waiting for buckets)."""
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(("quit",))
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()

    def _send(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise RuntimeError("the baseline worker process died") from None


def _serve(conn: Connection, config: BacktestConfig, baselines: tuple[str, ...], parent_end: Connection) -> None:
    """The worker's loop: start, closes, then end (answers the outcome, or the error's traceback) or quit."""
    parent_end.close()  # our copy of the parent's end: without it, a dead parent would never read as EOF
    lineup: Lineup | None = None
    try:
        while True:
            message = conn.recv()
            if message[0] == "start":
                lineup = Lineup(config, message[1], baselines, with_tidecast=False)
            elif message[0] == "close":
                lineup.close(*message[1:])
            elif message[0] == "end":
                conn.send(("ok", lineup.outcome() if lineup is not None else None))
                return
            else:
                return
    except EOFError:  # the parent went away
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def split_baselines(names: Sequence[str], workers: int) -> list[list[str]]:
    """Baselines for this process (first list) and for each of ``workers`` worker processes, in config order.

    Greedy by rough cost per bucket, scoring included, measured on Online Retail: a vectorised baseline 1,
    river and lightgbm 3, and this process starts with tidecast's ingest, learning and forecasting, 5.

    >>> split_baselines(["naive", "seasonal_naive", "moving_average", "croston", "tsb", "river"], 1)
    [['moving_average', 'tsb'], ['naive', 'seasonal_naive', 'croston', 'river']]
    >>> split_baselines(["naive", "tsb"], 0)
    [['naive', 'tsb']]
    """
    groups: list[list[str]] = [[] for _ in range(1 + max(0, workers))]
    load = [_COST[TIDECAST]] + [0.0] * (len(groups) - 1)
    for name in sorted(names, key=lambda n: -_COST.get(n, 1.0)):
        k = load.index(min(load))
        groups[k].append(name)
        load[k] += _COST.get(name, 1.0)
    return [sorted(group, key=list(names).index) for group in groups]


_COST = {TIDECAST: 5.0, "river": 3.0, "lightgbm": 3.0}
