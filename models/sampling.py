"""Which (series, origin) samples the learner draws at a close: distinct pairs, none before a series' first sale.

>>> import numpy as np
>>> rows, back = sample_pairs(np.random.default_rng(0), np.array([0, 9]), t=10, lo=1, hi=3, want=4)
>>> len(rows), bool(((10 - back) >= np.array([0, 9])[rows]).all())   # series 1 began at 9: only back = 1
(4, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_pairs"]


def sample_pairs(rng: np.random.Generator, seen: np.ndarray, t: int, lo: int, hi: int,
                 want: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``want`` distinct (row, lags_back) pairs, lags_back in [lo, hi] and origin >= first_seen."""
    n_rows, n_back = len(seen), hi - lo + 1
    total = n_rows * n_back
    if want <= 0 or total <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if total <= 4 * want:
        flat = rng.permutation(total)
    else:
        flat = np.unique(rng.integers(0, total, size=3 * want))
        flat = flat[rng.permutation(len(flat))]
    rows, back = flat // n_back, lo + flat % n_back
    ok = (t - back) >= seen[rows]
    return rows[ok][:want], back[ok][:want]
