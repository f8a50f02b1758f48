"""What-if: the live model's forecasts of chosen series under other plans, beside those under the stored plans.

:func:`read_only` resumes a :class:`~tidecast.stream.forecaster.Forecaster` from a checkpoint blob and the
window store as a restart would (same panel, same learner state) but can neither save a checkpoint nor
publish. :func:`what_if` then forecasts, from its last closed bucket ``t``, the buckets ``t+1 .. t+H`` of the
series the scenarios name: once with the plans stored now (the *baseline*, what the next close would assume
if nothing else arrived) and once per scenario with the scenario's rows laid over them
(:mod:`tidecast.stream.scenarios`). It calls the learner's ``forecast`` only: nothing is learned, written
or published. A store-wide row changes every series of the store, even one with its own stored plan.

>>> from tidecast.stream.window_store import MemoryWindowStore
>>> class Echo:  # forecasts the planned promo flag of each target bucket
...     model_version, min_history, horizon, quantiles, plan_inputs = 3, 2, 2, (0.5,), True
...     def forecast(self, history, seen, stores, skus, t, bucket_seconds, plans, remember):
...         return plans[:, -2:, :1], plans[:, -2:, 0]
...     def load_state_dict(self, state): pass
>>> state = {"format": "tidecast.forecaster/2", "bucket_seconds": 86_400, "horizon": 2, "quantiles": [0.5],
...          "last_closed": 10, "panel": {"series": ["s:A"], "first_seen": [9], "last_active": [10], "t": 10},
...          "learner": {}}
>>> config = ForecasterConfig(bucket_seconds=86_400, lateness_seconds=0, retention=7, quantiles=(0.5,), inputs=())
>>> loop = read_only(config, MemoryWindowStore(), Echo(), b"blob", lambda blob: state)
>>> rows = [ScenarioRow("promo", "s", None, None, None, (True, None, None, None), 1)]
>>> [(o.scenario, o.series, o.mean.tolist(), o.baseline_mean.tolist()) for o in what_if(loop, rows).outcomes]
[('promo', 's:A', [1.0, 1.0], [0.0, 0.0])]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tidecast.stream.forecaster import Forecaster, ForecasterConfig
from tidecast.stream.plan_history import resolve
from tidecast.stream.plans import PlanEntry, PlanValues, encode
from tidecast.stream.ports import Learner
from tidecast.stream.scenarios import ScenarioRow
from tidecast.stream.timebuckets import to_iso
from tidecast.stream.window_store import WindowStore

UNKNOWN: PlanValues = (None, None, None, None)


class WhatIfError(ValueError):
    """A scenario the live model cannot answer: an unknown series, a bucket outside the horizon, no model."""


class _ReadOnlyCheckpoints:
    """Hands the forecaster one blob; refuses to save (a what-if never writes the checkpoint)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def load(self) -> bytes | None:
        return self.blob

    def save(self, blob: bytes) -> None:
        raise RuntimeError("a what-if forecaster never saves a checkpoint")


class _NoSink:
    def publish(self, *args: object, **kwargs: object) -> int:
        raise RuntimeError("a what-if forecaster never publishes")


def read_only(config: ForecasterConfig, store: WindowStore, learner: Learner, blob: bytes, loads) -> Forecaster:
    """The forecaster resumed from ``blob`` (:class:`~tidecast.stream.forecaster.CheckpointMismatch` when it
    has another shape) on ``store``, which it only reads; never stepped, it cannot save or publish."""

    def refuse(state: dict) -> bytes:
        raise RuntimeError("a what-if forecaster never saves a checkpoint")

    return Forecaster(config, store, learner, _NoSink(), _ReadOnlyCheckpoints(blob), refuse, loads)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One series under one scenario: plans and forecasts of buckets ``t+1 .. t+H``, baseline and scenario."""

    scenario: str
    series: str
    baseline_plans: list[PlanValues]
    plans: list[PlanValues]
    baseline_quantiles: np.ndarray  # [H, Q]
    baseline_mean: np.ndarray  # [H]
    quantiles: np.ndarray
    mean: np.ndarray


@dataclass(frozen=True, slots=True)
class WhatIfReport:
    last_closed: int
    first_ms: int  # start of bucket t+1
    bucket_seconds: int
    quantiles: tuple[float, ...]
    model_version: int
    outcomes: list[Outcome]


def what_if(loop: Forecaster, rows: Sequence[ScenarioRow]) -> WhatIfReport:
    """Forecast the rows' series under the stored plans and under each scenario (see the module docstring)."""
    t, horizon, panel = loop.last_closed, loop.learner.horizon, loop.panel
    if t is None or panel.t is None:
        raise WhatIfError("the forecaster has closed no bucket yet: nothing to forecast from")
    if not getattr(loop.learner, "plan_inputs", False):
        raise WhatIfError("this model takes no plans: a scenario could not change its forecasts")
    first = t + 1
    changes = _changes(loop, rows, first, horizon)  # scenario -> series index -> [(step, values)]
    chosen = sorted({i for per_series in changes.values() for i in per_series})
    names = [panel.series[i] for i in chosen]
    row_of = {i: row for row, i in enumerate(chosen)}
    stores, skus = panel.stores_and_skus(np.asarray(chosen))
    stored = loop.store.read_plans(first, t + horizon)
    base = [[_stored(stored.get(first + step, {}), name) for step in range(horizon)] for name in names]
    length = panel.length
    window = np.zeros((len(chosen), length + horizon, 8), np.float32)
    window[:, :length] = resolve(loop.store.read_plans(t - length + 1, t), names, t - length + 1, length)[0]
    history, seen = panel.history[chosen], panel.first_seen[chosen]

    def forecast(plans: list[list[PlanValues]]) -> tuple[np.ndarray, np.ndarray]:
        window[:, length:] = [[encode(values) for values in row] for row in plans]
        values, mean = loop.learner.forecast(history, seen, stores, skus, t, loop.config.bucket_seconds,
                                             plans=window, remember=False)  # type: ignore[call-arg]
        return np.array(values, np.float32), np.array(mean, np.float32)  # copies: the window is reused

    base_q, base_mean = forecast(base)
    outcomes = []
    for name, per_series in changes.items():
        plans = [list(row) for row in base]
        for i, steps in per_series.items():
            row = row_of[i]
            for step, values in steps:
                plans[row][step] = tuple(new if new is not None else old  # type: ignore[assignment]
                                         for new, old in zip(values, plans[row][step], strict=True))
        q, mean = forecast(plans)
        for i in per_series:
            row = row_of[i]
            outcomes.append(Outcome(name, names[row], base[row], plans[row], base_q[row], base_mean[row], q[row],
                                    mean[row]))
    return WhatIfReport(t, loop.buckets.start_ms(first), loop.config.bucket_seconds, loop.config.quantiles,
                        loop.learner.model_version, outcomes)


def _changes(loop: Forecaster, rows: Sequence[ScenarioRow], first: int,
             horizon: int) -> dict[str, dict[int, list[tuple[int, PlanValues]]]]:
    """Per scenario (file order) and series index (panel order): the (step, values) the rows change."""
    panel, buckets = loop.panel, loop.buckets
    by_store: dict[str, list[int]] = {}
    for i, name in enumerate(panel.series):
        by_store.setdefault(name.partition(":")[0], []).append(i)
    last = first + horizon - 1
    out: dict[str, dict[int, list[tuple[int, PlanValues]]]] = {}
    for row in rows:
        where = f"row {row.line} (scenario {row.name!r})"
        if row.sku is None:
            series = by_store.get(row.store)
            if not series:
                raise WhatIfError(f"{where}: unknown store {row.store!r}: no series of it in the forecaster's "
                                  f"panel ({len(by_store)} stores)")
        elif row.target in panel.index:
            series = [panel.index[row.target]]
        else:
            raise WhatIfError(f"{where}: unknown series {row.target!r}: the forecaster has not seen it "
                              f"({len(panel)} series; tidecast inspect series STORE:SKU)")
        lo = first if row.first_ms is None else buckets.index(row.first_ms)
        hi = last if row.last_ms is None else buckets.index(row.last_ms)
        if lo < first or hi > last:
            outside = lo if lo < first else hi
            raise WhatIfError(
                f"{where}: bucket {to_iso(buckets.start_ms(outside))} is outside the horizon: the model forecasts "
                f"{to_iso(buckets.start_ms(first))} to {to_iso(buckets.start_ms(last))} (H={horizon} buckets after "
                f"the last closed one)")
        per_series = out.setdefault(row.name, {})
        for i in series:
            per_series.setdefault(i, []).extend((b - first, row.values) for b in range(lo, hi + 1))
    return {name: dict(sorted(per_series.items())) for name, per_series in out.items()}


def _stored(targets: dict[str, PlanEntry], series: str) -> PlanValues:
    """The stored plan of one bucket of ``series``: its own, else its store's, else unknown (as the forecaster
    resolves them, :func:`~tidecast.stream.plan_history.resolve`)."""
    entry = targets.get(series) or targets.get(series.partition(":")[0])
    return UNKNOWN if entry is None else entry.values


def to_json(report: WhatIfReport) -> dict:
    """The ``whatif --json`` document: per scenario and series, per target bucket, both plans (fields left out
    are unknown; ``event`` null: no event), both forecasts (mean, quantiles) and scenario minus baseline."""
    step_ms = report.bucket_seconds * 1000
    scenarios: dict[str, list[dict]] = {}
    for o in report.outcomes:
        buckets = []
        for step in range(len(o.mean)):
            base = {"mean": float(o.baseline_mean[step]), "quantiles": o.baseline_quantiles[step].tolist()}
            alt = {"mean": float(o.mean[step]), "quantiles": o.quantiles[step].tolist()}
            buckets.append({
                "start": to_iso(report.first_ms + step * step_ms), "changed": o.plans[step] != o.baseline_plans[step],
                "baseline_plan": plan_json(o.baseline_plans[step]), "plan": plan_json(o.plans[step]),
                "baseline": base, "scenario": alt,
                "difference": {"mean": alt["mean"] - base["mean"],
                               "quantiles": [a - b for a, b in zip(alt["quantiles"], base["quantiles"], strict=True)]},
            })
        scenarios.setdefault(o.scenario, []).append({"series": o.series, "buckets": buckets})
    return {
        "last_closed": to_iso(report.first_ms - step_ms), "bucket_seconds": report.bucket_seconds,
        "quantiles": list(report.quantiles), "model_version": report.model_version,
        "scenarios": [{"scenario": name, "series": series} for name, series in scenarios.items()],
    }


def plan_json(values: PlanValues) -> dict:
    """A plan as in a plan event: known fields only, ``event`` None for "no event".

    >>> plan_json((True, None, None, "")), plan_json(UNKNOWN)
    ({'promo': True, 'event': None}, {})
    """
    return {name: (None if name == "event" and value == "" else value)
            for name, value in zip(("promo", "price", "open", "event"), values, strict=True) if value is not None}
