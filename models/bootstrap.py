"""Moving-block bootstrap of a mean over forecast origins: is a lead a lead, or a tie?

Scores of consecutive origins are dependent (an origin's H target buckets overlap the next origin's H - 1),
so resampling single origins would understate the spread. The moving-block bootstrap (Kunsch, "The
jackknife and the bootstrap for general stationary observations", Annals of Statistics 17(3), 1989) draws
overlapping blocks of ``block`` consecutive origins, uniformly among the ``n - block + 1`` blocks, joins
``ceil(n / block)`` of them, cuts the result to ``n`` values, and takes its mean; the 2.5% and 97.5%
percentiles of those means are the 95% interval.

Block length (:func:`block_length`): ``max(H, ceil(n ** (1/3)))``, at most ``n``. ``n ** (1/3)`` is the
order of the block length that minimises the error of the bootstrap variance for the mean (Hall, Horowitz
& Jing, "On blocking rules for the bootstrap with dependent data", Biometrika 82(3), 1995); the horizon H
is a floor because two origins less than H buckets apart share target buckets, so their scores are
dependent by construction up to lag H - 1.

Pure numpy, fixed seed: the same input gives the same interval.

>>> import numpy as np
>>> block_length(343, 14), block_length(343, 2), block_length(5, 14)
(14, 7, 5)
>>> mean, (lo, hi) = block_bootstrap_ci(np.array([1.0, -1.0] * 20), block=2)
>>> mean, lo <= 0.0 <= hi
(0.0, True)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_RESAMPLES", "DEFAULT_SEED", "block_bootstrap_ci", "block_length"]

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


def block_length(n: int, horizon: int) -> int:
    """``max(horizon, ceil(n ** (1/3)))``, between 1 and ``n`` (see the module docstring)."""
    if n < 1:
        return 1
    cube = math.ceil(round(n ** (1.0 / 3.0), 9))  # 343 ** (1/3) is 6.999...: round before ceil
    return max(1, min(n, max(int(horizon), cube)))


def block_bootstrap_ci(
    values: np.ndarray,
    block: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
) -> tuple[float, tuple[float, float]]:
    """(mean of ``values``, (lo, hi) percentile interval of the moving-block bootstrap means).

    ``values`` [n] are in origin order (NaN is not allowed: pass the origins where both sides are defined).
    With fewer than two values the interval is (NaN, NaN).

    >>> mean, (lo, hi) = block_bootstrap_ci(np.array([2.0, 2.0, 2.0]), block=1)
    >>> mean, lo, hi
    (2.0, 2.0, 2.0)
    """
    x = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite")
    n = x.size
    if n == 0:
        return math.nan, (math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return mean, (math.nan, math.nan)
    b = max(1, min(int(block), n))
    k = math.ceil(n / b)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - b + 1, size=(int(resamples), k))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(int(resamples), k * b)[:, :n]
    means = x[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return mean, (float(lo), float(hi))
