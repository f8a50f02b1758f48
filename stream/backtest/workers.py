"""Baselines in worker processes: :class:`BaselineWorker` runs a :class:`Lineup` of baselines in another process.

The engine feeds each worker bucket by bucket through a pipe, so the forecaster and the baselines use two (or
more) cores; the worker scores with the same :class:`~tidecast.stream.backtest.scoring.Lineup` code as this
process. :func:`split_baselines` decides which baselines run where. The child never touches torch or rich.

>>> split_baselines(["naive", "tsb", "river"], 1)  # this process already has tidecast (cost 5 against 5)
[[], ['naive', 'tsb', 'river']]
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from tidecast.stream.backtest.config import TIDECAST, BacktestConfig
from tidecast.stream.backtest.forecast_file import ForecastRows, part_path
from tidecast.stream.backtest.forecast_recorder import record
from tidecast.stream.backtest.plan_feed import PlanReceiver, PlanSender
from tidecast.stream.backtest.scoring import Lineup


class BaselineWorker:
    """A :class:`Lineup` of baselines in a worker process, fed bucket by bucket through a pipe.

    The forecaster and the baselines then use two cores; the scores are computed by the same code either way.
    """

    def __init__(self, config: BacktestConfig, baselines: Sequence[str], number: int = 1) -> None:
        # fork (where there is one) starts at once and needs no importable __main__; Backtest starts the
        # workers before it builds the learner or reads any input. The child never touches torch or rich.
        ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve,
            args=(child, config, tuple(baselines), self.conn, number),
            daemon=True,
            name="tidecast-backtest-baselines",
        )
        self.process.start()
        child.close()
        self.names = list(baselines)
        self.plans = PlanSender()

    def start(self, first_bucket: int) -> None:
        """Build the worker's :class:`Lineup` at the first closed bucket."""
        self._send(("start", first_bucket))

    def close_bucket(self, t: int, units: np.ndarray, revenue: np.ndarray, new_series: Sequence[str] = (),
                     plans: np.ndarray | None = None) -> None:
        """Bucket ``t`` closed with ``units`` and ``revenue`` [S]: the worker's :meth:`Lineup.close_bucket`.

        ``new_series``: the ids of the series added since the last close (for ``config.forecasts``); ``plans``:
        those of ``t+1 .. t+H`` (``--known``), sent as what changed since the last close (:mod:`.plan_feed`)."""
        sent = None if plans is None else self.plans.encode(plans)
        self._send(("close_bucket", t, units, revenue, list(new_series), sent))

    def outcome(self) -> dict:
        """The worker's :meth:`Lineup.outcome` (None if it never started); the process ends."""
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


def _serve(
    conn: Connection, config: BacktestConfig, baselines: tuple[str, ...], parent_end: Connection, number: int
) -> None:
    """The worker's loop: start, bucket closes, then end (answers the outcome, or the error's traceback) or quit.

    With ``config.forecasts`` the scored points go to the worker's own part file (``part_path(..., number)``).
    """
    parent_end.close()  # our copy of the parent's end: without it, a dead parent would never read as EOF
    lineup: Lineup | None = None
    rows: ForecastRows | None = None
    plans = PlanReceiver()
    try:
        while True:
            message = conn.recv()
            if message[0] == "start":
                lineup = Lineup(config, message[1], baselines, with_tidecast=False)
                if config.forecasts is not None:
                    rows = ForecastRows(part_path(config.forecasts, number), config.quantiles, config.buckets,
                                        header=False)
                    record(lineup, rows)
            elif message[0] == "close_bucket":
                assert lineup is not None, "a bucket closed before the start message"
                if rows is not None:
                    rows.names.extend(message[4])
                sent = message[5]
                lineup.close_bucket(message[1], message[2], message[3], None,
                                    None if sent is None else plans.decode(sent))
            elif message[0] == "end":
                if rows is not None:
                    rows.close()
                conn.send(("ok", lineup.outcome() if lineup is not None else None))
                return
            else:
                return
    except EOFError:  # the parent went away
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        if rows is not None:
            rows.close()
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
