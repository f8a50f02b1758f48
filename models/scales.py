"""M5 scales of each series from its own history: the denominators of MASE, RMSSE and SPL.

The scale of a forecast issued at origin ``o`` comes from the series' history before ``o``, counted from its
first non-zero sale (M5 Competitor's Guide, section 4; Makridakis, Spiliotis & Assimakopoulos, "M5 accuracy
competition: results, findings, and conclusions", IJF 38(4), 2022): the in-sample one-step naive mean
absolute difference (MASE, SPL; Hyndman & Koehler, "Another look at measures of forecast accuracy", IJF
22(4), 2006, with the one-step naive as the in-sample benchmark) and mean squared difference (RMSSE).
:func:`history_scales` computes them from an array, :class:`RunningScales` online. Pure numpy.

>>> import numpy as np
>>> s1, s2 = history_scales(np.array([[1.0, 3.0, 2.0, 4.0]]))   # diffs 2, -1, 2
>>> float(s1[0]), float(s2[0])
(1.6666666666666667, 3.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["RunningScales", "bucket_column", "history_scales"]


def history_scales(y_hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """M5 scales of each series from its own history, counted from its first non-zero sale.

    For series ``i`` with first non-zero (and non-NaN) value at index ``f``, the one-step differences
    ``d_j = y_j - y_{j-1}`` for ``f < j < t`` (both values finite) give ``mae_scale = mean |d|`` and
    ``mse_scale = mean d^2``. A series with no non-zero value, or with no valid difference (fewer than two
    points of history), gets NaN for both. Vectorised over series.

    Args:
        y_hist: [S, t] units per series and bucket; NaN before a series starts (or where unknown).

    Returns:
        (mae_scale [S], mse_scale [S]) as float64.

    >>> s1, s2 = history_scales(np.array([[0.0, 0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 5.0]]))
    >>> s1.tolist(), s2.tolist()                                 # diffs -2, 1 for the first series
    ([1.5, nan], [2.5, nan])
    """
    y = np.asarray(y_hist, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"y_hist must be [S, t], got shape {y.shape}")
    n_series, t = y.shape
    if t < 2:
        nan = np.full(n_series, np.nan)
        return nan, nan.copy()
    sale = np.isfinite(y) & (y != 0)
    first = np.where(sale.any(axis=1), sale.argmax(axis=1), t)  # index of the first non-zero sale
    d = np.diff(y, axis=1)  # d[:, j-1] = y_j - y_{j-1}
    ok = np.isfinite(d) & (np.arange(1, t)[None, :] > first[:, None])
    d[~ok] = 0.0
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae = np.abs(d).sum(axis=1) / count
        mse = (d * d).sum(axis=1) / count
    return mae, mse


def bucket_column(y: np.ndarray, n_series: int) -> np.ndarray:
    """One bucket's values as a flat float array; series are only ever appended, so it has at least
    ``n_series`` entries (the ones beyond are new series).

    >>> bucket_column([[1, 2, 3]], 2).tolist()
    [1.0, 2.0, 3.0]
    """
    values = np.asarray(y, dtype=float).ravel()
    if values.size < n_series:
        raise ValueError(f"expected at least {n_series} values, got {values.size}")
    return values


class RunningScales:
    """Streaming form of :func:`history_scales`: O(S) per bucket, grows when new series appear.

    After ``update`` has seen buckets ``0 .. t-1``, ``scales()`` equals ``history_scales(y[:, :t])``.

    >>> rs = RunningScales()
    >>> for col in ([0.0, 1.0], [2.0, 1.0], [0.0, 1.0], [1.0, 1.0]):
    ...     rs.update(np.array(col))
    >>> [v.tolist() for v in rs.scales()]                        # second series: constant, so scale 0
    [[1.5, 0.0], [2.5, 0.0]]
    """

    def __init__(self, n_series: int = 0) -> None:
        self._last = np.full(n_series, np.nan)
        self._started = np.zeros(n_series, dtype=bool)
        self._abs = np.zeros(n_series)
        self._sq = np.zeros(n_series)
        self._n = np.zeros(n_series, dtype=np.int64)

    @property
    def n_series(self) -> int:
        return int(self._last.size)

    def _grow(self, n: int) -> None:
        k = n - self.n_series
        self._last = np.concatenate([self._last, np.full(k, np.nan)])
        self._started = np.concatenate([self._started, np.zeros(k, dtype=bool)])
        self._abs = np.concatenate([self._abs, np.zeros(k)])
        self._sq = np.concatenate([self._sq, np.zeros(k)])
        self._n = np.concatenate([self._n, np.zeros(k, dtype=np.int64)])

    def update(self, y: np.ndarray) -> None:
        """Add one bucket: ``y`` [S'], S' >= the number of series so far (new series are appended)."""
        y = bucket_column(y, self.n_series)
        if y.size > self.n_series:
            self._grow(y.size)
        d = y - self._last
        ok = self._started & np.isfinite(d)
        d = np.where(ok, d, 0.0)
        self._abs += np.abs(d)
        self._sq += d * d
        self._n += ok
        self._started |= np.isfinite(y) & (y != 0)
        self._last = y.copy()

    def scales(self) -> tuple[np.ndarray, np.ndarray]:
        """(mae_scale [S], mse_scale [S]); NaN where fewer than two points since the first sale."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = np.where(self._n > 0, self._abs / self._n, np.nan)
            mse = np.where(self._n > 0, self._sq / self._n, np.nan)
        return mae, mse
