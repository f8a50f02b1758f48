"""Coverage of lead-time bands, scored as the buckets close: how often the demand summed over the ``L``
buckets after an origin fell inside the band forecast for that sum, for ``L = 1 .. H`` (issue 12, part 1).

:class:`LeadTimeCoverage` keeps each origin's bands (``[S, H]`` low and high, in units) until its ``H``
buckets have closed, adds each closed bucket's units to the running sums of the origins it follows, and
counts, per ``L``, the series whose sum after ``L`` buckets lies inside ``[low, high]``. Series are named, so
a panel that grows between origins is fine; a series absent from a closed bucket sold 0 in it.

>>> import numpy as np
>>> cov = LeadTimeCoverage(horizon=2)
>>> cov.forecast(10, ["a", "b"], np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[3.0, 5.0], [1.0, 1.0]]))
>>> cov.close(11, {"a": 2.0, "b": 2.0})   # L = 1: a 2 in [1, 3], b 2 outside [0, 1]
>>> cov.close(12, {"a": 2.0})             # L = 2: a 4 in [2, 5], b 2 outside [0, 1]
>>> cov.coverage().tolist(), cov.counted.tolist()
([0.5, 0.5], [2, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class LeadTimeCoverage:
    """Running coverage per ``L`` of lead-time bands (see the module docstring)."""

    def __init__(self, horizon: int) -> None:
        self.horizon = int(horizon)
        self.inside = np.zeros(self.horizon, np.int64)
        self.counted = np.zeros(self.horizon, np.int64)
        self._pending: dict[int, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]] = {}

    def forecast(self, origin: int, series: Sequence[str], low: np.ndarray, high: np.ndarray) -> None:
        """The bands ``[S, H]`` issued when bucket ``origin`` closed, for the sums of buckets ``origin + 1 ..``."""
        self._pending[int(origin)] = (list(series), np.asarray(low, np.float64), np.asarray(high, np.float64),
                                      np.zeros(len(series)))

    def close(self, bucket: int, units: Mapping[str, float]) -> None:
        """Bucket ``bucket`` closed with ``units`` per series: advance every origin it follows."""
        for origin in sorted(self._pending):
            lead = int(bucket) - origin
            if not 1 <= lead <= self.horizon:
                continue
            names, low, high, sums = self._pending[origin]
            sums += np.fromiter((units.get(name, 0.0) for name in names), np.float64, count=len(names))
            ok = (sums >= low[:, lead - 1]) & (sums <= high[:, lead - 1])
            self.inside[lead - 1] += int(ok.sum())
            self.counted[lead - 1] += len(names)
            if lead == self.horizon:
                del self._pending[origin]

    def coverage(self) -> np.ndarray:
        """Per ``L`` (index ``L - 1``): the share of sums inside their band (NaN where none was scored)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counted > 0, self.inside / np.maximum(self.counted, 1), np.nan)
