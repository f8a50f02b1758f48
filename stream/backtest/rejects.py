"""A backtest that rejects too much of its input stops: the scores would describe the few rows left.

The tally of reasons is :class:`tidecast.stream.rejects.RejectTally` (shared with ``tidecast produce file``).

>>> from tidecast.stream.rejects import RejectTally
>>> tally = RejectTally(); tally.add("late", 3)
>>> str(TooManyRejected(tally, read=10, rows=10, limit=0.05))
'3 of 10 rows rejected (30.0%), more than the 5.0% allowed'
"""

from __future__ import annotations

from tidecast.stream.rejects import RejectTally


class TooManyRejected(ValueError):
    """More than the allowed share of a backtest's rows was rejected; scores would describe the few rows left.

    ``tally`` holds the reasons, ``read`` the rows read so far and ``rows`` the rows of the whole input: a run
    stops early (``read < rows``) once the rejects alone exceed ``limit`` of the whole input's rows.
    """

    def __init__(self, tally: RejectTally, read: int, rows: int, limit: float) -> None:
        self.tally, self.read, self.rows, self.limit = tally, read, rows, limit
        self.share = tally.total / rows if rows else 1.0
        if read >= rows:
            text = f"{tally.total:,} of {rows:,} rows rejected ({self.share:.1%}), more than the {limit:.1%} allowed"
        else:
            text = (f"{tally.total:,} rows rejected in the first {read:,} of {rows:,}, already more than the "
                    f"{limit:.1%} of all rows allowed")
        super().__init__(text)
