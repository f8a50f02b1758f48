"""Row helpers of the per-series state arrays every baseline keeps (first axis: series).

>>> import numpy as np
>>> take(np.array([1, 2, 3]), np.array([2, 0])).tolist(), take(np.array([1]), None).tolist()
([3, 1], [1])
"""

from __future__ import annotations

import numpy as np

__all__ = ["pad_rows", "take"]


def take(a: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    """``a[idx]``, or ``a`` itself when ``idx`` is None (all series)."""
    return a if idx is None else a[idx]


def pad_rows(a: np.ndarray, n: int, fill: float | int | bool) -> np.ndarray:
    """``a`` with its first axis grown to ``n``, new rows set to ``fill``.

    >>> pad_rows(np.array([1.0, 2.0]), 3, np.nan).tolist()
    [1.0, 2.0, nan]
    """
    if a.shape[0] >= n:
        return a
    extra = np.full((n - a.shape[0], *a.shape[1:]), fill, dtype=a.dtype)
    return np.concatenate([a, extra])
