"""What the web view shows, kept up to date from the forecast and target topics, with Redis read on demand.

:class:`DashboardState` follows ``<prefix>forecasts`` and ``<prefix>targets`` from their beginning in two
background threads and keeps, per series, its latest forecast and target and its forecasts of the last
closes. From those and the windows in Redis (read through the ``series_window`` it is handed) it computes:

- **live accuracy**: over the last ``ACCURACY_CLOSES`` closed buckets and up to ``ACCURACY_SERIES`` series,
  the mean absolute error of each published one-step median against the bucket's units, beside seasonal
  naive's (the units one season before) on the same points;
- **the series whose forecast moved most**: the next bucket's median now against what the close before said
  for the same bucket, relative to the larger of the two and 1 unit;
- their **explanations**: those published with the forecasts (``TIDECAST_EXPLAIN``), else from the
  ``explain`` it is handed (the live model, read-only), computed in the background once per close.

>>> state = DashboardState(series_window=lambda s: [], stats=dict, explain=None, season=7)
>>> state.add_forecast({"series": "s:A", "origin": "2026-01-05T00:00:00+00:00", "bucket_seconds": 86400,
...                     "values": [[1.0, 2.0, 3.0], [1.0, 4.0, 6.0]], "model_version": 3})
>>> state.add_forecast({"series": "s:A", "origin": "2026-01-06T00:00:00+00:00", "bucket_seconds": 86400,
...                     "values": [[2.0, 9.0, 12.0], [1.0, 4.0, 6.0]], "model_version": 4})
>>> [(m["series"], m["before"], m["now"]) for m in state.moved()]   # 4 said for 01-06 at 01-05, now 9
[('s:A', 4.0, 9.0)]
>>> state.latest["s:A"]["explain"] = {"median": 9.0, "reference": 5.0, "contributions": {"calendar": 4.0}}
>>> state.refresh_explanations(); state.explained["series"][0]["contributions"]   # published: no model needed
{'calendar': 4.0}
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from tidecast.stream.timebuckets import Buckets, from_iso

ACCURACY_CLOSES = 7
ACCURACY_SERIES = 200
MOVED = 5


class DashboardState:
    """See the module docstring. ``series_window(series)``: ``[(bucket, {"units": ...}), ...]`` from Redis;
    ``stats()``: the ``inspect stats`` document; ``explain(names)``: the ``explain --json`` document, or None."""

    def __init__(self, series_window: Callable[[str], list], stats: Callable[[], dict],
                 explain: Callable[[list[str]], dict] | None, season: int) -> None:
        self.series_window, self.stats, self.explain, self.season = series_window, stats, explain, season
        self.lock = threading.Lock()
        self.latest: dict[str, dict] = {}
        self.history: dict[str, deque[tuple[int, float, float | None]]] = {}  # (origin bucket, step-1 median, step-2)
        self.targets: dict[str, dict] = {}
        self.forecasts_seen = 0
        self.buckets: Buckets | None = None
        self.explained: dict = {}
        self._explained_origin: int | None = None
        self._accuracy: tuple[int | None, dict] = (None, {})

    # ----------------------------------------------------------------- topics
    def add_forecast(self, doc: dict) -> None:
        """One message of the forecast topic."""
        buckets = self.buckets or Buckets(int(doc["bucket_seconds"]))
        origin = buckets.index(from_iso(doc["origin"]))
        mid = len(doc["values"][0]) // 2
        second = doc["values"][1][mid] if len(doc["values"]) > 1 else None
        with self.lock:
            self.buckets = buckets
            self.forecasts_seen += 1
            now = self.latest.get(doc["series"])
            if now is None or buckets.index(from_iso(now["origin"])) <= origin:
                self.latest[doc["series"]] = doc
            past = self.history.setdefault(doc["series"], deque(maxlen=ACCURACY_CLOSES + 2))
            if not past or past[-1][0] < origin:
                past.append((origin, float(doc["values"][0][mid]), None if second is None else float(second)))

    def add_target(self, doc: dict) -> None:
        """One message of the target topic."""
        with self.lock:
            self.targets[doc["series"]] = doc

    def follow(self, messages: Iterator[dict], add: Callable[[dict], None]) -> threading.Thread:
        """Feed ``messages`` (a topic, followed forever) to ``add`` in a daemon thread."""
        def run() -> None:
            for doc in messages:
                add(doc)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ views
    @property
    def last_origin(self) -> int | None:
        with self.lock:
            return max((past[-1][0] for past in self.history.values() if past), default=None)

    def series_list(self) -> list[str]:
        """Series with a forecast, the largest latest median first."""
        with self.lock:
            docs = list(self.latest.values())
        return [d["series"] for d in sorted(docs, key=lambda d: -sum(row[len(row) // 2] for row in d["values"]))]

    def moved(self, n: int = MOVED) -> list[dict]:
        """The ``n`` series whose next-bucket median moved most since the close before (module docstring)."""
        out: list[dict] = []
        with self.lock:
            for series, past in self.history.items():
                if len(past) < 2 or past[-2][0] != past[-1][0] - 1 or past[-2][2] is None:
                    continue
                before, now = past[-2][2], past[-1][1]
                if before == now:
                    continue
                out.append({"series": series, "before": before, "now": now,
                            "change": (now - before) / max(abs(before), abs(now), 1.0)})
        return sorted(out, key=lambda m: -abs(float(m["change"])))[:n]

    def accuracy(self) -> dict:
        """Live accuracy against seasonal naive (module docstring), cached per close."""
        origin = self.last_origin
        cached_origin, cached = self._accuracy
        if origin is None or origin == cached_origin:
            return cached
        with self.lock:  # copies: the follower thread appends to the deques meanwhile
            chosen = [(series, list(past)) for series, past in
                      sorted(self.history.items(), key=lambda kv: -kv[1][-1][1])[:ACCURACY_SERIES]]
        closed = origin - 1  # the last closed bucket
        tide = naive = 0.0
        points = 0
        for series, past in chosen:
            units = {b: float(v.get("units", 0.0)) for b, v in self.series_window(series)}
            for bucket, median, _ in past:
                if bucket > closed or bucket < closed - ACCURACY_CLOSES + 1:
                    continue
                actual = units.get(bucket, 0.0)
                tide += abs(median - actual)
                naive += abs(units.get(bucket - self.season, 0.0) - actual)
                points += 1
        result = {"points": points, "buckets": ACCURACY_CLOSES, "series": len(chosen),
                  "tidecast_mae": tide / points if points else None,
                  "seasonal_naive_mae": naive / points if points else None}
        self._accuracy = (origin, result)
        return result

    def refresh_explanations(self) -> None:
        """Explain the series that moved most, once per close (call it from a background thread): with the
        explanations their latest forecasts carry when every one has one, else through ``explain``."""
        origin = self.last_origin
        if origin is None or origin == self._explained_origin:
            return
        names = [m["series"] for m in self.moved()]
        if not names:
            return
        published: list[Any] = [(self.latest.get(name) or {}).get("explain") for name in names]
        if all(published):
            report: Any = {"series": [{"series": name, **found} for name, found in zip(names, published, strict=True)]}
        elif self.explain is None:
            return
        else:
            try:
                report = self.explain(names)
            except Exception as exc:  # the model or Redis away: say so on the page, try again next close
                report = {"error": f"{type(exc).__name__}: {exc}"}
        self.explained, self._explained_origin = report, origin
