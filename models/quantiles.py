"""The quantile rules, in one place: the default levels, their validation, the median, the 80% pair, the band
drawn by the charts (lowest, median, highest) and the labels (``p10``) everything prints.

Pure Python on purpose (no numpy or torch at import time): the settings and the CLI import it and must start
fast. Every forecaster, the scorer and the settings validate their levels with :func:`check_quantiles`.

>>> DEFAULT_QUANTILES
(0.1, 0.5, 0.9)
>>> check_quantiles([0.05, "0.5", 0.95])
(0.05, 0.5, 0.95)
>>> check_quantiles((0.9, 0.1))
Traceback (most recent call last):
...
ValueError: quantiles must be distinct, increasing and inside (0, 1), got (0.9, 0.1)
>>> median_index((0.1, 0.5, 0.9)), interval80_pair((0.1, 0.5, 0.9))
(1, (0, 2))
>>> quantile_labels((0.05, 0.1, 0.5, 0.9, 0.95)), band_indices((0.05, 0.1, 0.5, 0.9, 0.95))
('p5/p10/p50/p90/p95', (0, 2, 4))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

__all__ = ["DEFAULT_QUANTILES", "band_indices", "check_quantiles", "interval80_pair", "median_index",
           "quantile_label", "quantile_labels"]

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
"""The forecast quantiles unless configured otherwise: the median and the central 80% interval."""


def check_quantiles(values: Iterable[float | str]) -> tuple[float, ...]:
    """``values`` as a tuple of floats, if they are distinct, increasing and inside (0, 1); else ValueError.

    >>> check_quantiles([0.25, 0.75])
    (0.25, 0.75)
    >>> check_quantiles([])
    Traceback (most recent call last):
    ...
    ValueError: quantiles must be distinct, increasing and inside (0, 1), got ()
    """
    try:
        qs = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"quantiles must be numbers, got {values!r}") from None
    ok = bool(qs) and all(0.0 < q < 1.0 for q in qs) and all(a < b for a, b in pairwise(qs))
    if not ok:  # NaN fails every comparison, so it lands here too
        raise ValueError(f"quantiles must be distinct, increasing and inside (0, 1), got {qs}")
    return qs


def median_index(quantiles: Iterable[float]) -> int:
    """Index of the quantile used as the point forecast: the one closest to 0.5 (the lower one on a tie).

    >>> median_index((0.1, 0.5, 0.9)), median_index((0.25, 0.75))
    (1, 0)
    """
    q = [float(v) for v in quantiles]
    if not q:
        raise ValueError("median_index needs at least one quantile")
    return min(range(len(q)), key=lambda i: (abs(q[i] - 0.5) + 1e-12 * i, i))


def interval80_pair(quantiles: Iterable[float]) -> tuple[int, int] | None:
    """Indices ``(lo, hi)`` of the quantile pair spanning 80% (``q_hi - q_lo = 0.8``), or None if none does.

    Among several such pairs the most symmetric around 0.5 wins, then the outermost.

    >>> pair = interval80_pair
    >>> pair((0.1, 0.5, 0.9)), pair((0.05, 0.1, 0.5, 0.9, 0.95)), pair((0.5,))
    ((0, 2), (1, 3), None)
    """
    q = list(quantiles)
    pairs = [
        (abs(q[a] + q[b] - 1.0), q[a], a, b)
        for a in range(len(q))
        for b in range(a + 1, len(q))
        if abs(q[b] - q[a] - 0.8) < 1e-9
    ]
    if not pairs:
        return None
    _, _, a, b = min(pairs)
    return a, b



def band_indices(quantiles: Sequence[float]) -> tuple[int, int, int]:
    """Indices ``(lo, mid, hi)`` of the lowest quantile, the median (:func:`median_index`) and the highest, for
    levels in increasing order (as :func:`check_quantiles` requires): the band the charts draw.

    >>> band_indices((0.1, 0.5, 0.9)), band_indices((0.05, 0.25, 0.75, 0.95))
    ((0, 1, 2), (0, 1, 3))
    """
    return 0, median_index(quantiles), len(quantiles) - 1


def quantile_label(q: float) -> str:
    """The label of one level: ``p10`` for 0.1, ``p2.5`` for 0.025.

    >>> [quantile_label(q) for q in (0.1, 0.5, 0.9, 0.025, 0.07)]
    ['p10', 'p50', 'p90', 'p2.5', 'p7']
    """
    return f"p{round(100 * q, 6):g}"


def quantile_labels(quantiles: Iterable[float]) -> str:
    """The levels' labels joined by ``/``, as in the column headers of ``tail`` and ``demo``.

    >>> quantile_labels((0.1, 0.5, 0.9)), quantile_labels((0.025, 0.5, 0.975))
    ('p10/p50/p90', 'p2.5/p50/p97.5')
    """
    return "/".join(quantile_label(q) for q in quantiles)
