"""Dates to ISO-8601: the slash-date order a file writes, and the reader that follows it.

A file decides its slash-date order when its values do (a part over 12 can only be a day);
otherwise each row's region decides. See :class:`DateReader`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Final

from bik_sync.records.errors import FieldError
from bik_sync.records.normalise import clean

# Day, month and year in either order with a 2- or 4-digit year, an optional clock and AM/PM.
_SLASH_DATE: Final = re.compile(
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})"
    r"(?:,?[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?[Mm]\.?)?)?"
)
_YEAR_FIRST_SLASH: Final = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_TEXT_DATE_FORMATS: Final = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y")
#: Where dates are written month first (4/20/2009); everywhere else day first (20/4/2009).
MONTH_FIRST_REGIONS: Final = frozenset({"US", "PR", "GU", "VI", "AS", "MP", "UM", "PH", "FM", "MH", "PW"})
DAY_FIRST, MONTH_FIRST = "day first", "month first"
BOTH_ORDERS = "both orders"  # the file shows both: a date that could be either is not guessed
# A two-digit year up to this year's is this century's ("24" -> 2024); later ones the last ("85" -> 1985).
_PIVOT: Final = date.today().year % 100
# Cells of dates written year first with dashes (2024-03-05 14:00) -> their ISO form, as read: neither
# the file's order nor the row's region plays a part in those, and exports repeat timestamps.
ISO_DATES: dict[str, str] = {}
_ISO_DATES_KEPT: Final = 4096


def slash_date_order(values: Any) -> str | None:
    """The order a file writes its slash dates in, when its values decide it; None when they do not.

    A first part over 12 can only be a day, a second part over 12 only a day: either decides for
    the whole file. A file that shows both is BOTH_ORDERS: its ambiguous dates cannot be read.
    """
    found: set[str] = set()
    for value in values:
        match = _SLASH_DATE.fullmatch(value.strip()) if isinstance(value, str) else None
        if match and not _year_first_possible(match):
            first, second = int(match[1]), int(match[2])
            if first > 12 >= second:
                found.add(DAY_FIRST)
            elif second > 12 >= first:
                found.add(MONTH_FIRST)
    if len(found) > 1:
        return BOTH_ORDERS
    return found.pop() if found else None


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year <= _PIVOT else 1900
    return year


def _year_first_possible(match: re.Match[str]) -> bool:
    """A short date with dashes and a two-digit year may be year first (YY-MM-DD): not guessed."""
    return len(match[3]) == 2 and match.group(0)[len(match[1])] == "-"


def _clock(match: re.Match[str]) -> tuple[int, int, int] | None:
    if match[4] is None:
        return None
    hour = int(match[4])
    if match[7]:  # 12-hour clock
        if not 1 <= hour <= 12:
            raise ValueError("hour")
        hour = hour % 12 + (12 if match[7] in "Pp" else 0)
    return hour, int(match[5]), int(match[6] or 0)


def _iso(year: int, month: int, day: int, clock: tuple[int, int, int] | None) -> str:
    if clock is None:
        return date(year, month, day).isoformat()
    return datetime(year, month, day, *clock).isoformat()


def _iso_form(text: str) -> str:
    """A date written year first with dashes, as ISO-8601 writes it (ValueError: it is no date)."""
    if len(text) == 10:
        return date.fromisoformat(text).isoformat()
    # Ruby's Time#to_s (Chatwoot, Rails apps): 2024-03-05 10:20:30 UTC
    if text[-4:] in (" UTC", " GMT"):
        text = text[:-4] + "+00:00"
    return datetime.fromisoformat(text).isoformat()


class DateReader:
    """Dates to ISO-8601: a date stays a date (``2024-03-05``), a time keeps its offset if it had one.

    ``order`` is the file's slash-date order when the file decides it (:func:`slash_date_order`);
    otherwise each row's region decides: month first for US rows, day first elsewhere. A value that
    only makes sense in the other order than the file's is rejected, never read the other way.
    """

    __slots__ = ("default_region", "order")

    def __init__(self, order: str | None = None, default_region: str = "IN") -> None:
        self.order = order
        self.default_region = default_region.upper()

    def __call__(self, value: Any, field: str, region: str | None = None) -> str | None:
        if type(value) is not str:
            if value is None:
                return None
            raise FieldError(f'"{field}" must be a valid date')
        text = clean(value)
        if not text:
            return None
        # Year first with dashes (2024-03-05, 2024-03-05 14:00): read the same in any file and row.
        year_first = text[4:5] == "-" and (len(text) == 10 or text[:4].isdigit())
        try:
            found = _iso_form(text) if year_first else self._parse(text, region)
        except ValueError:
            found = None
        if found is None:
            raise FieldError(self._message(field, text))
        if year_first and len(ISO_DATES) < _ISO_DATES_KEPT:
            ISO_DATES[value] = found
        return found

    def _message(self, field: str, text: str) -> str:
        match = _SLASH_DATE.fullmatch(text)
        if match and _year_first_possible(match):
            return (
                f'"{field}" must be a valid date (a two-digit year with dashes, as in 05-03-24, could '
                "be the first part or the last: write the year in full, as in 05-03-2024)"
            )
        if match and self.order == BOTH_ORDERS:
            return (
                f'"{field}" must be a valid date (this file writes dates both day first and month first, '
                "so one like 05/03/2024 could be either: write it as 2024-03-05)"
            )
        if match and self.order and max(int(match[1]), int(match[2])) > 12:
            example = "25/12/2024" if self.order == DAY_FIRST else "12/25/2024"
            return f'"{field}" must be a valid date (this file writes dates {self.order}, as in {example})'
        return f'"{field}" must be a valid date'

    def _parse(self, text: str, region: str | None) -> str | None:
        """A date in any shape but ISO's (``_iso_form``)."""
        match = _SLASH_DATE.fullmatch(text)
        if match:
            return self._slash_date(match, region)
        match = _YEAR_FIRST_SLASH.fullmatch(text)
        if match:
            clock = None if match[4] is None else (int(match[4]), int(match[5]), int(match[6] or 0))
            return _iso(int(match[1]), int(match[2]), int(match[3]), clock)
        for pattern in _TEXT_DATE_FORMATS:
            try:
                return datetime.strptime(text, pattern).date().isoformat()
            except ValueError:
                continue
        return None

    def _slash_date(self, match: re.Match[str], region: str | None) -> str | None:
        if _year_first_possible(match):
            return None  # "24-03-05": 24 March 2005, or 5 March 2024 as YY-MM-DD writes it
        first, second, year = int(match[1]), int(match[2]), _year(match[3])
        order = self._order(first, second, region)
        if order is None:
            return None  # could be either
        day, month = (first, second) if order == DAY_FIRST else (second, first)
        return _iso(year, month, day, _clock(match))

    def _order(self, first: int, second: int, region: str | None) -> str | None:
        """The order to read one slash date in; None when the file shows both and it could be either."""
        order = self.order
        if order == BOTH_ORDERS:
            if first <= 12 and second <= 12:
                return None
            return DAY_FIRST if first > 12 else MONTH_FIRST
        if order is None:
            if first > 12 >= second:
                return DAY_FIRST  # only one order makes sense of this value
            if second > 12 >= first:
                return MONTH_FIRST
            row_region = region or self.default_region
            return MONTH_FIRST if row_region in MONTH_FIRST_REGIONS else DAY_FIRST
        return order


_DEFAULT_DATES: Final = DateReader()


def to_date(value: Any, field: str) -> str | None:
    """A date read with no file-wide order and the default region (see :class:`DateReader`)."""
    return _DEFAULT_DATES(value, field)
