"""Value normalisation: one converter per kind of field, shared by file rows and queue records.

A converter takes a raw value (a CSV cell, or any JSON value) and the API field name, and returns
the normalised value, or ``None`` when the value is empty (the field is then absent), or raises
:class:`FieldError` with an API-style message. Converters are plain functions so a reader can
bind them once per column and call them in its inner loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import phonenumbers

from bik_sync.records.countries import country_code
from bik_sync.records.errors import FieldError
from bik_sync.records.fields import BOOLEAN_FIELDS, DATE_FIELDS, PHONE_FIELDS

Converter = Callable[[Any, str], Any]


def clean(value: str) -> str:
    """Trim, strip a spreadsheet guard apostrophe (``'+919876543210``), and empty a placeholder."""
    value = value.strip()
    if value[:1] == "'":
        value = value[1:].strip()
    if len(value) < PLACEHOLDER_MAX and value in PLACEHOLDERS:
        return ""
    return value


# Cells that mean "nothing", as exports and spreadsheets write them, in the casings people type.
_PLACEHOLDER_WORDS: Final = ("null", "none", "-", "--", "n/a", "na", "#n/a", "(blank)", "(none)")
PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    variant
    for word in _PLACEHOLDER_WORDS
    for variant in (word, word.upper(), word.capitalize(), word.title())
) - {"Na"}  # written so, it is a name (Na Yeon), not "not available"
PLACEHOLDER_MAX: Final = max(len(word) for word in _PLACEHOLDER_WORDS) + 1
# In a country column "NA" is Namibia, not "not available".
COUNTRY_PLACEHOLDERS: Final[frozenset[str]] = PLACEHOLDERS - {"na", "NA", "Na"}


def to_text(value: Any, field: str) -> str | None:
    if type(value) is str:
        return clean(value) or None
    if value is None:
        return None
    raise FieldError(f'"{field}" must be a string')


def to_country(value: Any, field: str) -> str | None:
    """Text, but ``NA`` (Namibia) is a country, not a placeholder."""
    if type(value) is str:
        text = value.strip().removeprefix("'").strip()
        return None if not text or text in COUNTRY_PLACEHOLDERS else text
    if value is None:
        return None
    raise FieldError(f'"{field}" must be a string')


# Excel shows a long number as 7.02255E+12 and saves it so in CSV: the digits after the sixth are gone.
# Excel always writes the exponent's sign (7.02255E+12); without a sign or a decimal point, "12E45"
# or a hex id like "650000000000000000e00001" is an identifier, not a number a tool rewrote.
_SCIENTIFIC: Final = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+[eE]\+?|[eE]\+)[0-9]+")
scientific_match: Final = _SCIENTIFIC.fullmatch


def scientific_message(field: str) -> str:
    return (
        f'"{field}" is in scientific notation (like 7.02255E+12): Excel turned the number into '
        "scientific notation and its last digits are lost; export the file again and open it in "
        "Excel with the column formatted as Text (Data > From Text/CSV), or upload the export unopened"
    )


def to_identifier(value: Any, field: str) -> str | None:
    """A string, or a whole number as systems send ids (``"id": 7210448301122``)."""
    if type(value) is str:
        text = clean(value)
        if ("+" in text or "." in text or "," in text) and scientific_match(text):
            raise FieldError(scientific_message(field))
        return text or None
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    raise FieldError(f'"{field}" must be a string')


# Dot-separated atoms, "@", then labels of 1-63 letters, digits and inner hyphens, and a TLD of
# letters. Like Joi's email rule, letters beyond ASCII are allowed in both parts (josé@example.com,
# a@bücher.de) and a TLD may be punycode (xn--p1ai). Possessive runs and look-arounds (not nested
# optional groups) keep it from backtracking.
_EMAIL: Final = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]++(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]++)*+"
    r"@(?:(?!-)[a-z0-9\u00a0-\uffff-]{1,63}+(?<!-)\.)+(?:[a-z\u00a0-\uffff]{2,63}|xn--[a-z0-9-]{1,59})"
)
email_match: Final = _EMAIL.fullmatch


def to_email(value: Any, field: str) -> str | None:
    if type(value) is not str:
        if value is None:
            return None
        raise FieldError(f'"{field}" must be a string')
    text = clean(value).lower()
    if not text:
        return None
    if email_match(text) is None:
        raise FieldError(f'"{field}" must be a valid email')
    return text


BOOLEAN_WORDS: Final[dict[str, bool]] = {
    "yes": True,
    "y": True,
    "true": True,
    "t": True,
    "1": True,
    "on": True,
    "subscribed": True,
    "opted_in": True,
    "optedin": True,
    "no": False,
    "n": False,
    "false": False,
    "f": False,
    "0": False,
    "off": False,
    # Shopify's consent states (customer API / newer exports): anything but "subscribed" is not consent.
    "not_subscribed": False,
    "notsubscribed": False,
    "unsubscribed": False,
    "pending": False,
    "redacted": False,
    "invalid": False,
    "opted_out": False,
    "never_subscribed": False,  # Klaviyo's consent states
}


def to_boolean(value: Any, field: str) -> bool | None:
    if type(value) is str:
        text = clean(value)
        if not text:
            return None
        found = BOOLEAN_WORDS.get(text.lower().replace(" ", "_").replace("-", "_"))
        if found is None:
            raise FieldError(f'"{field}" must be a boolean')
        return found
    if type(value) is bool:
        return value
    if value is None:
        return None
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise FieldError(f'"{field}" must be a boolean')


GOOGLE_ALL_CONTACTS: Final = "* myContacts"


def to_tags(value: Any, field: str) -> list[str] | None:
    if type(value) is str:
        # Google Contacts joins several labels with " ::: "; everyone else with commas.
        parts = value.replace(":::", ",").split(",") if ":::" in value else value.split(",")
    elif type(value) is list:
        parts = []
        for index, item in enumerate(value):
            if type(item) is not str:
                raise FieldError(f'"{field}[{index}]" must be a string')
            parts.append(item)
    elif value is None:
        return None
    else:
        raise FieldError(f'"{field}" must be an array')
    tags: list[str] = []
    for part in parts:
        tag = clean(part)
        if len(tag) > 1 and tag[0] == tag[-1] == '"':  # Mailchimp writes TAGS as "Customer","VIP"
            tag = clean(tag[1:-1])
        # Google's own group, on every contact, is not a label anyone gave.
        if tag and tag not in tags and tag != GOOGLE_ALL_CONTACTS:
            tags.append(tag)
    return tags or None


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
# A two-digit year up to next year's is this century's ("24" -> 2024); later ones the last ("85" -> 1985).
_PIVOT: Final = (date.today().year + 1) % 100


def slash_date_order(values: Any) -> str | None:
    """The order a file writes its slash dates in, when its values decide it; None when they do not.

    A first part over 12 can only be a day, a second part over 12 only a day: either decides for
    the whole file. A file that shows both is BOTH_ORDERS: its ambiguous dates cannot be read.
    """
    found: set[str] = set()
    for value in values:
        match = _SLASH_DATE.fullmatch(value.strip()) if isinstance(value, str) else None
        if match:
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
        try:
            found = self._parse(text, region)
        except ValueError:
            found = None
        if found is None:
            raise FieldError(self._message(field, text))
        return found

    def _message(self, field: str, text: str) -> str:
        match = _SLASH_DATE.fullmatch(text)
        if match and self.order == BOTH_ORDERS:
            return (
                f'"{field}" must be a valid date (this file writes dates both day first and month first, '
                "so one like 05/03/2024 could be either: write it as 2024-03-05)"
            )
        if match and self.order and max(int(match[1]), int(match[2])) > 12:
            example = "25/12/2024" if self.order == DAY_FIRST else "12/25/2024"
            return f'"{field}" must be a valid date (this file writes dates {self.order}, as in {example})'
        return f'"{field}" must be a valid date'

    def _order_of(self, first: int, second: int, region: str | None) -> str | None:
        """The order to read one slash date in: the file's, else the only one that makes sense of
        it, else its row's region's convention; None when the file shows both and it could be either."""
        if self.order in (DAY_FIRST, MONTH_FIRST):
            return self.order
        if first > 12 >= second:
            return DAY_FIRST
        if second > 12 >= first:
            return MONTH_FIRST
        if self.order == BOTH_ORDERS:
            return None
        return MONTH_FIRST if (region or self.default_region) in MONTH_FIRST_REGIONS else DAY_FIRST

    def _parse(self, text: str, region: str | None) -> str | None:
        if len(text) == 10 and text[4] == "-":
            return date.fromisoformat(text).isoformat()
        if text[:4].isdigit() and text[4:5] == "-":
            # Ruby's Time#to_s (Chatwoot, Rails apps): 2024-03-05 10:20:30 UTC
            if text[-4:] in (" UTC", " GMT"):
                text = text[:-4] + "+00:00"
            return datetime.fromisoformat(text).isoformat()
        match = _SLASH_DATE.fullmatch(text)
        if match:
            first, second, year = int(match[1]), int(match[2]), _year(match[3])
            order = self._order_of(first, second, region)
            if order is None:
                return None  # the file shows both orders, and this date could be either
            day, month = (first, second) if order == DAY_FIRST else (second, first)
            return _iso(year, month, day, _clock(match))
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


_DEFAULT_DATES: Final = DateReader()


def to_date(value: Any, field: str) -> str | None:
    """A date read with no file-wide order and the default region (see :class:`DateReader`)."""
    return _DEFAULT_DATES(value, field)


# --- phone numbers ---------------------------------------------------------------------------

_PHONE_JUNK: Final = str.maketrans("", "", " -().\u00a0\u2010\u2011\u2012\u2013/")
_FORMATS: Final = {
    "E164": phonenumbers.PhoneNumberFormat.E164,
    "INTERNATIONAL": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "NATIONAL": phonenumbers.PhoneNumberFormat.NATIONAL,
}


@dataclass(frozen=True, slots=True)
class RowCountry:
    """The country a row names, as the phone and date rules need it."""

    region: str | None = None  # the ISO code of a country we recognise
    unrecognised: str | None = None  # what the row wrote, when it names a country we do not know


NO_COUNTRY: Final = RowCountry()


def country_of(value: Any) -> RowCountry:
    """What one country cell says: a known country, an unknown one, or nothing (empty, placeholder)."""
    if type(value) is not str:
        return NO_COUNTRY
    text = value.strip().removeprefix("'").strip()
    if not text or text in COUNTRY_PLACEHOLDERS:
        return NO_COUNTRY
    code = country_code(text)
    return RowCountry(region=code) if code else RowCountry(unrecognised=text)


def region_of(country: Any) -> str | None:
    """The ISO code of a country cell (``IN``, ``IND``, ``India``, ``Republic of India``), or None."""
    return country_of(country).region


def no_country_code_message(field: str, country: str) -> str:
    shown = country if len(country) <= 40 else country[:40] + "..."
    return (
        f'"{field}" has no country code and the row\'s country "{shown}" is not a country we recognise: '
        "write the number with its country code (+44...) or the country as a name or ISO code"
    )


class PhoneNormaliser:
    """Phone numbers to one format, with a fast path for the shapes Indian exports are full of."""

    __slots__ = ("_default_region", "_format", "formats_e164", "indian")

    def __init__(self, default_region: str = "IN", phone_format: str = "E164") -> None:
        self._default_region = default_region.upper()
        self._format = _FORMATS[phone_format.upper()]
        style = phone_format.upper()
        self.formats_e164 = style == "E164"
        self.indian: Callable[[str], str]  # ten digits of an Indian mobile -> the configured format
        if style == "E164":
            self.indian = _indian_e164
        else:
            # phonenumbers groups some series differently (+91 61102 00000 but +91 6110 200 000), so
            # only E.164 has a shortcut; the digits are still known valid, parsing is all that remains.
            number_format = self._format

            def indian(ten: str) -> str:
                formatted: str = phonenumbers.format_number(phonenumbers.parse("+91" + ten), number_format)
                return formatted

            self.indian = indian

    def __call__(
        self, value: Any, field: str, region: str | None = None, unrecognised: str | None = None
    ) -> str | None:
        """``region``: the row's country, when recognised; ``unrecognised``: what it said otherwise.

        A number without a country code takes the row's country, the default region only when the
        row names no country at all, and is rejected when the row names one we do not know.
        """
        if type(value) is str:
            text = clean(value)
            if not text:
                return None
        elif type(value) is int:
            text = str(value)
        elif value is None:
            return None
        else:
            raise FieldError(f'"{field}" must be a string')
        if region is None and unrecognised is None:
            region = self._default_region
        digits = text.translate(_PHONE_JUNK)
        # Fast path: Indian mobiles ([6-9] + 9 digits, all valid) as 10 digits, 0/91/+91/0091-prefixed.
        size = len(digits)
        if digits.isascii():
            if size == 13 and digits[:3] == "+91" and digits[3] in "6789" and digits[3:].isdigit():
                return self.indian(digits[3:])
            if region == "IN" and digits.isdigit():
                if size == 10 and digits[0] in "6789":
                    return self.indian(digits)
                if size == 12 and digits[:2] == "91" and digits[2] in "6789":
                    return self.indian(digits[2:])
                if size == 11 and digits[0] == "0" and digits[1] in "6789":
                    return self.indian(digits[1:])
        return self._slow(text, field, region, unrecognised)

    def _slow(self, text: str, field: str, region: str | None, unrecognised: str | None) -> str:
        if ":::" in text:  # Google Contacts joins a contact's numbers with " ::: ": the first is theirs
            text = text.split(":::", 1)[0].strip()
        if ("E" in text or "e" in text) and scientific_match(text.replace(" ", "")):
            raise FieldError(scientific_message(field))
        if text.startswith("00") and text[2:3].isdigit():
            text = "+" + text[2:]
        if region is None and not text.startswith("+"):
            raise FieldError(no_country_code_message(field, unrecognised or ""))
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise FieldError(f'"{field}" must be a valid phone number') from None
        if not phonenumbers.is_valid_number(number):
            raise FieldError(f'"{field}" must be a valid phone number')
        formatted: str = phonenumbers.format_number(number, self._format)
        return formatted


def _indian_e164(ten: str) -> str:
    return "+91" + ten


def converter_for(field: str) -> Converter:
    """The converter of a non-phone field (phones need a region: see PhoneNormaliser)."""
    if field == "email":
        return to_email
    if field in BOOLEAN_FIELDS:
        return to_boolean
    if field in DATE_FIELDS:
        return to_date
    if field == "tags":
        return to_tags
    if field == "partnerCustomerId":
        return to_identifier
    if field == "country":
        return to_country
    if field in PHONE_FIELDS:
        raise ValueError("phone fields are normalised by PhoneNormaliser")
    return to_text
