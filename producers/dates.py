"""Dates as people write them: ``--date-format`` (strptime) and the day/month order of ``11/1/2000``, detected.

A file's time column is ISO-8601 or epoch numbers (read as they are), or numeric dates such as ``11/1/2000``,
``01.11.2000`` or ``2000/11/01``, maybe followed by a time of day. For the last kind, :class:`DateOrder` looks
at the whole column: where any first field is above 12 the dates are day first, where any second field is,
month first; neither leaves the order open (:class:`AmbiguousDates`, asking for ``--date-format``), both is
no consistent order at all. A year written first (four digits) is always year, month, day.

:func:`parser` turns a strptime format (given, or detected) into a function from text to a naive
:class:`~datetime.datetime` (or None); a format without a time of day also takes ``HH:MM`` or ``HH:MM:SS``
after the date, separated by a space.

>>> order = DateOrder()
>>> for text in ("11/1/2000", "11/30/2000 08:15", "2/28/2001"):
...     _ = order.add(text)
>>> order.format()
'%m/%d/%Y'
>>> parse = parser("%d.%m.%Y")
>>> parse("01.11.2000"), parse("1.11.2000 8:30"), parse("2000-11-01")
(datetime.datetime(2000, 11, 1, 0, 0), datetime.datetime(2000, 11, 1, 8, 30), None)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

_NUMERIC_DATE = re.compile(r"\s*(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*")
"""Three numeric fields with one separator (``/``, ``.`` or ``-``), then maybe a time of day."""
_TIMES = (" %H:%M:%S", " %H:%M", " %H:%M:%S.%f")
"""Times of day tried after a date-only format."""


class AmbiguousDates(ValueError):
    """The dates of a column read as day/month and as month/day alike: ``--date-format`` must say which."""


def looks_like_numeric_date(text: str) -> bool:
    """Whether ``text`` is a date such as ``11/1/2000`` or ``1.11.2000 08:15`` (not ISO ``2000-11-01``).

    >>> [looks_like_numeric_date(t) for t in ("11/1/2000", "2000-11-01", "1.11.00 8:15", "x")]
    [True, False, True, False]
    """
    match = _NUMERIC_DATE.fullmatch(text)
    if match is None:
        return False
    return not (len(match[1]) == 4 and match[2] == "-")  # ISO dates are read as ISO


class DateOrder:
    """Collects a column's numeric dates (:meth:`add`) and says their strptime format (:meth:`format`).

    Memory is constant: only the largest first and second field are kept, and the separator and year widths.
    """

    def __init__(self, column: str = "ts") -> None:
        self.column = column
        self.seen = 0
        self.first_max = self.second_max = 0
        self.year_first = self.year_last = False
        self.separator = ""
        self.short_year = False
        self.example = ""
        self.differ = False

    def add(self, text: str) -> bool:
        """Take one value; False (and nothing kept) when it is no numeric date."""
        match = _NUMERIC_DATE.fullmatch(text)
        if match is None or (len(match[1]) == 4 and match[2] == "-"):  # no numeric date, or ISO
            return False
        a, separator, b, c = match[1], match[2], match[3], match[4]
        if self.seen == 0:
            self.separator, self.example = separator, text.strip()
        self.seen += 1
        if len(a) == 4:
            self.year_first = True
            return True
        self.year_last = True
        self.short_year |= len(c) <= 2
        first, second = int(a), int(b)
        self.first_max, self.second_max = max(self.first_max, first), max(self.second_max, second)
        self.differ |= first != second
        return True

    def format(self) -> str | None:
        """The strptime format of the dates seen (None: none seen); raises :class:`AmbiguousDates` or
        ``ValueError`` when the column does not tell.

        >>> order = DateOrder("Date")
        >>> order.add("01/02/2020"), order.add("03/04/2020")
        (True, True)
        >>> order.format()
        Traceback (most recent call last):
        ...
        tidecast.producers.dates.AmbiguousDates: cannot tell day from month in column 'Date': no value has a \
field above 12 (such as '01/02/2020'); give --date-format, e.g. --date-format %m/%d/%Y (month first) \
or --date-format %d/%m/%Y (day first)
        """
        if self.seen == 0:
            return None
        s = self.separator
        year = "%y" if self.short_year else "%Y"
        if self.year_first and self.year_last:
            raise ValueError(f"dates in column {self.column!r} put the year first in some rows and last in others "
                             f"(such as {self.example!r}); give --date-format")
        if self.year_first:
            return f"%Y{s}%m{s}%d"
        month_first, day_first = f"%m{s}%d{s}{year}", f"%d{s}%m{s}{year}"
        if self.first_max > 12 and self.second_max > 12:
            raise ValueError(f"dates in column {self.column!r} have a field above 12 both first and second "
                             f"(such as {self.example!r}): no one day/month order fits; give --date-format")
        if self.first_max > 12:
            return day_first
        if self.second_max > 12 or not self.differ:  # every value reads the same either way: take one
            return month_first
        raise AmbiguousDates(
            f"cannot tell day from month in column {self.column!r}: no value has a field above 12 (such as "
            f"{self.example!r}); give --date-format, e.g. --date-format {month_first} (month first) or "
            f"--date-format {day_first} (day first)"
        )


def parser(date_format: str) -> Callable[[str], datetime | None]:
    """A function reading text in ``date_format`` (strptime) as a naive datetime, None when it does not fit.

    A format without ``%H`` (a date only) also reads a time of day after the date (:data:`_TIMES`).

    >>> parser("%m/%d/%Y")("11/1/2000 17:05:09").isoformat(), parser("%m/%d/%Y")("13/1/2000")
    ('2000-11-01T17:05:09', None)
    """
    formats = (date_format,) if "%H" in date_format or "%I" in date_format else (
        date_format, *(date_format + time for time in _TIMES))
    strptime = datetime.strptime

    def parse(text: str) -> datetime | None:
        text = text.strip()
        for candidate in formats:
            try:
                return strptime(text, candidate)
            except ValueError:
                continue
        return None

    return parse
