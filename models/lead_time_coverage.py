"""How lead-time quantiles did, scored as the buckets close: for ``L = 1 .. H``, how often the demand summed
over the ``L`` buckets after an origin fell inside the 80% band forecast for that sum, and, for every level
``tau``, how often it fell at or below the ``tau`` quantile (a calibrated quantile: ``tau`` of the time) and
how often strictly below it. Demand is a count: a sum is 0, or 3, with a positive chance, and the ``tau``
quantile ``q`` of a count satisfies ``P(sum < q) <= tau <= P(sum <= q)``, with the two far apart where the sum
is often 0 (a slow item's 0.1 quantile is 0: no sum is below it, and most are at it). So a level is calibrated
when ``tau`` lies between the two shares, not when "at or below" reads ``tau``.

:class:`LeadTimeCoverage` keeps each origin's quantiles (``[S, H, QL]`` in units, of the panel rows forecast)
until its ``H`` buckets have closed, adds each closed bucket's units to the running sums of the origins it
follows, and counts per ``L``. Rows index a panel that may grow between origins (new series appended, so
every row forecast is in the units of each later close).

>>> import numpy as np
>>> cov = LeadTimeCoverage(horizon=2, levels=(0.1, 0.9))
>>> q = np.array([[[1.0, 3.0], [2.0, 5.0]], [[0.0, 1.0], [0.0, 1.0]]])       # rows 0 and 1: [low, high] per L
>>> cov.forecast(10, np.array([0, 1]), q)
>>> cov.close(11, np.array([2.0, 2.0]))   # L = 1: row 0's 2 in [1, 3], row 1's 2 outside [0, 1]
>>> cov.close(12, np.array([2.0, 0.0]))   # L = 2: row 0's 4 in [2, 5], row 1's 2 outside [0, 1]
>>> cov.coverage80().tolist(), cov.counted.tolist(), cov.hit_rates()[0.9].tolist()
([0.5, 0.5], [2, 2], [0.5, 0.5])
>>> zero = LeadTimeCoverage(horizon=1, levels=(0.1, 0.9))
>>> zero.forecast(0, np.array([0]), np.array([[[0.0, 2.0]]])); zero.close(1, np.array([0.0]))
>>> zero.hit_rates()[0.1].tolist(), zero.below_rates()[0.1].tolist()   # a sum of 0 at a 0.1 quantile of 0
([1.0], [0.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .quantiles import interval80_pair


class LeadTimeCoverage:
    """Running coverage per ``L`` of lead-time quantiles at ``levels`` (see the module docstring)."""

    def __init__(self, horizon: int, levels: Sequence[float]) -> None:
        self.horizon, self.levels = int(horizon), tuple(float(v) for v in levels)
        self.pair = interval80_pair(self.levels)
        self.inside = np.zeros(self.horizon, np.int64)
        self.below = np.zeros((self.horizon, len(self.levels)), np.int64)
        self.strictly_below = np.zeros((self.horizon, len(self.levels)), np.int64)
        self.counted = np.zeros(self.horizon, np.int64)
        self._pending: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def forecast(self, origin: int, rows: np.ndarray, quantiles: np.ndarray) -> None:
        """The quantiles ``[n, H, QL]`` of the panel ``rows`` [n] issued when bucket ``origin`` closed, for the
        sums of buckets ``origin + 1 ..``."""
        self._pending[int(origin)] = (np.asarray(rows, np.int64), np.asarray(quantiles, np.float32),
                                      np.zeros(len(rows)))

    def close(self, bucket: int, units: np.ndarray) -> None:
        """Bucket ``bucket`` closed with ``units`` [S] of the panel's rows: advance every origin it follows."""
        units = np.asarray(units, np.float64)
        for origin in sorted(self._pending):
            lead = int(bucket) - origin
            if not 1 <= lead <= self.horizon:
                continue
            rows, q, sums = self._pending[origin]
            sums += units[rows]
            at = q[:, lead - 1]
            self.below[lead - 1] += (sums[:, None] <= at).sum(axis=0)
            self.strictly_below[lead - 1] += (sums[:, None] < at).sum(axis=0)
            if self.pair is not None:
                lo, hi = self.pair
                self.inside[lead - 1] += int(((sums >= at[:, lo]) & (sums <= at[:, hi])).sum())
            self.counted[lead - 1] += len(rows)
            if lead == self.horizon:
                del self._pending[origin]

    def _share(self, counts: np.ndarray) -> np.ndarray:
        counted = self.counted.reshape((-1,) + (1,) * (counts.ndim - 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counted > 0, counts / np.maximum(counted, 1), np.nan)

    def coverage80(self) -> np.ndarray:
        """Per ``L`` (index ``L - 1``): the share of sums inside their 80% band (NaN where none was scored, or
        without a pair of levels 0.8 apart)."""
        return self._share(self.inside) if self.pair is not None else np.full(self.horizon, np.nan)

    def hit_rates(self) -> dict[float, np.ndarray]:
        """Per level: the share of sums at or below its quantile, per ``L``."""
        shares = self._share(self.below)
        return {level: shares[:, k] for k, level in enumerate(self.levels)}

    def below_rates(self) -> dict[float, np.ndarray]:
        """Per level: the share of sums strictly below its quantile, per ``L``."""
        shares = self._share(self.strictly_below)
        return {level: shares[:, k] for k, level in enumerate(self.levels)}

    def as_json(self) -> dict[str, object]:
        """``coverage80`` and ``sums`` per ``L``, and per level and ``L`` the share at or below (``hit_rate``)
        and strictly below (``below_rate``): calibrated, ``below_rate <= tau <= hit_rate``."""
        return {"coverage80": [round(float(c), 4) for c in self.coverage80()], "sums": self.counted.tolist(),
                "hit_rate": {f"{level:g}": [round(float(v), 4) for v in shares]
                             for level, shares in self.hit_rates().items()},
                "below_rate": {f"{level:g}": [round(float(v), 4) for v in shares]
                               for level, shares in self.below_rates().items()}}
