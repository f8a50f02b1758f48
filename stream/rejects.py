"""Why rows were rejected: a tally of the validator's reasons, grouped so that one bad value per row stays one line.

A reason such as ``field 'ts' is not ISO-8601: '31/12/2011'`` names the row's value; counted as it is, a file
with a million bad dates would give a million reasons. :func:`reason_kind` keeps the text up to the value
(``field 'ts' is not ISO-8601``); :class:`RejectTally` counts the kinds and keeps the first full reason of
each as an example. The backtest tallies every reject of its ingest; ``tidecast produce file`` tallies the
rows the validator refuses before they are sent.

>>> tally = RejectTally()
>>> for reason in ("field 'ts' is not ISO-8601: '31/12/2011'", "late", "field 'ts' is not ISO-8601: '1/1/2012'",
...                "field 'promo' must be true or false, got a string"):
...     tally.add(reason)
>>> tally.total, tally.top(2)
(4, [("field 'ts' is not ISO-8601", 2, "field 'ts' is not ISO-8601: '31/12/2011'"), ('late', 1, 'late')])
>>> print(tally.describe(10, n=2))
4 of 10 rows rejected (40.0%); top reasons:
       2  field 'ts' is not ISO-8601 (e.g. field 'ts' is not ISO-8601: '31/12/2011')
       1  late
"""

from __future__ import annotations

import re
from collections import Counter

MAX_REASON = 120
"""Characters kept of a reason kind, and of its example."""
TOP_REASONS = 5
"""Reasons shown (and put in ``--json``) by default."""

_VALUE = re.compile(r": |, got (?=['\"\d\-\[{(]|True|False|inf|nan)")
"""Where a reason's value starts: after ``: `` (a detail or a value), or after ``, got `` when a value follows
(``, got a string`` names a kind and is kept)."""


def reason_kind(reason: str) -> str:
    """The reason up to the value it quotes, at most :data:`MAX_REASON` characters.

    >>> reason_kind("field 'store' must not contain ':', got 'a:b'")
    "field 'store' must not contain ':'"
    >>> reason_kind("not valid JSON: unexpected character: line 1 column 7 (char 6)")
    'not valid JSON'
    >>> reason_kind("field 'qty' must be a finite number, got a string")
    "field 'qty' must be a finite number, got a string"
    """
    found = _VALUE.search(reason)
    kind = reason[: found.start()] if found else reason
    return _short(kind)


def _short(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class RejectTally:
    """Counts of rejected rows by :func:`reason_kind`, with the first full reason of each kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, reason: str, count: int = 1) -> None:
        kind = reason_kind(reason)
        self.counts[kind] += count
        if kind not in self.examples:
            self.examples[kind] = _short(reason)

    def top(self, n: int = TOP_REASONS) -> list[tuple[str, int, str]]:
        """The ``n`` most frequent kinds as ``(kind, count, example)``, most frequent first."""
        return [(kind, count, self.examples[kind]) for kind, count in self.counts.most_common(n)]

    def as_json(self, n: int = TOP_REASONS) -> list[dict]:
        """The top ``n`` as ``[{"reason", "count", "example"}]`` (for ``--json``)."""
        return [{"reason": kind, "count": count, "example": example} for kind, count, example in self.top(n)]

    def lines(self, n: int = TOP_REASONS) -> list[str]:
        """One line per top reason: its count, its kind and an example (plain text)."""
        return [f"{count:>8,}  {kind}" + ("" if example == kind else f" (e.g. {example})")
                for kind, count, example in self.top(n)]

    def describe(self, rows: int, what: str = "rejected", n: int = TOP_REASONS) -> str:
        """``"R of N rows rejected (x%); top reasons:"`` (``what`` instead of rejected) and :meth:`lines`."""
        share = self.total / rows if rows else 0.0
        return "\n".join([f"{self.total:,} of {rows:,} rows {what} ({share:.1%}); top reasons:", *self.lines(n)])
