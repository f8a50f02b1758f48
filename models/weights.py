"""M5 series weights: each series' sales over the ``window`` buckets before a forecast origin.

M5 weights every series by its dollar sales over the last 28 days of the training sample, the days just
before the forecast origin (M5 Competitor's Guide, section 4: "cumulative actual dollar sales ... during
the last 28 observations of the training sample"; Makridakis, Spiliotis & Assimakopoulos, IJF 38(4), 2022).
:class:`RunningSales` keeps those sums online, one bucket at a time, so a weight never looks past the origin.
Without any price in the window (a file without prices) the weights are unit sales instead: the share of
volume rather than of revenue. Returns (negative sales) count as 0 when the window's sum is negative.

Pure numpy; no I/O.

>>> import numpy as np
>>> rs = RunningSales(window=2)
>>> for units, revenue in (([1.0, 2.0], [2.0, 2.0]), ([3.0, 0.0], [6.0, 0.0]), ([1.0, 1.0], [2.0, 1.0])):
...     rs.update(np.array(units), np.array(revenue))
>>> weights, basis = rs.weights()        # the last two buckets: revenue 6 + 2 and 0 + 1
>>> weights.tolist(), basis
([8.0, 1.0], 'revenue')
"""

from __future__ import annotations

import numpy as np

from .scales import bucket_column

__all__ = ["DEFAULT_WEIGHT_WINDOW", "RunningSales"]

DEFAULT_WEIGHT_WINDOW = 28
"""Buckets of sales before the origin that weigh each series (M5: 28 days)."""


class RunningSales:
    """Units and revenue of every series over the last ``window`` buckets seen; grows when series appear.

    After ``update`` has seen buckets ``0 .. t-1``, :meth:`weights` gives each series' sales over buckets
    ``max(0, t - window) .. t-1``: the weights of a forecast with origin ``t``.

    >>> rs = RunningSales(window=3)
    >>> rs.update(np.array([2.0]), np.array([0.0]))            # no price known: unit sales weigh
    >>> rs.update(np.array([1.0, 4.0]), np.array([0.0, 0.0]))  # a second series appears
    >>> weights, basis = rs.weights()
    >>> weights.tolist(), basis
    ([3.0, 4.0], 'units')
    """

    def __init__(self, window: int = DEFAULT_WEIGHT_WINDOW, n_series: int = 0) -> None:
        if window < 1:
            raise ValueError(f"the weight window must be at least 1 bucket, got {window}")
        self.window = int(window)
        self._units = np.zeros((self.window, int(n_series)))
        self._revenue = np.zeros((self.window, int(n_series)))
        self._next = 0  # the ring-buffer row the next bucket overwrites

    @property
    def n_series(self) -> int:
        return int(self._units.shape[1])

    def update(self, units: np.ndarray, revenue: np.ndarray) -> None:
        """Add one bucket: ``units`` and ``revenue`` [S'] (NaN = unknown, counted as 0), S' >= the series so far."""
        u = bucket_column(units, self.n_series)
        r = bucket_column(revenue, self.n_series)
        if r.size != u.size:
            raise ValueError(f"units and revenue must have the same length, got {u.size} and {r.size}")
        if u.size > self.n_series:
            k = u.size - self.n_series
            self._units = np.concatenate([self._units, np.zeros((self.window, k))], axis=1)
            self._revenue = np.concatenate([self._revenue, np.zeros((self.window, k))], axis=1)
        self._units[self._next] = np.nan_to_num(u, nan=0.0)
        self._revenue[self._next] = np.nan_to_num(r, nan=0.0)
        self._next = (self._next + 1) % self.window

    def weights(self) -> tuple[np.ndarray, str]:
        """(weights [S] >= 0, basis): dollar sales over the window (basis ``"revenue"``), or unit sales
        (``"units"``) when no revenue at all was seen in it. Not normalised: the scorer normalises over the
        series it scores."""
        revenue = np.maximum(self._revenue.sum(axis=0), 0.0)
        if revenue.sum() > 0:
            return revenue, "revenue"
        return np.maximum(self._units.sum(axis=0), 0.0), "units"
