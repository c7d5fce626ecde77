"""Value normalisation: one converter per kind of field, shared by file rows and queue records.

A converter takes a raw value (a CSV cell, or any JSON value) and the API field name, and returns
the normalised value, or ``None`` when the value is empty (the field is then absent), or raises
:class:`FieldError` with an API-style message. Converters are plain functions so a reader can
bind them once per column and call them in its inner loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final

import phonenumbers

from bik_sync.records.errors import FieldError
from bik_sync.records.fields import BOOLEAN_FIELDS, DATE_FIELDS, PHONE_FIELDS

Converter = Callable[[Any, str], Any]


def clean(value: str) -> str:
    """Trim, and strip a spreadsheet guard apostrophe (``'+919876543210``)."""
    value = value.strip()
    if value[:1] == "'":
        value = value[1:].strip()
    return value


def to_text(value: Any, field: str) -> str | None:
    if type(value) is str:
        return clean(value) or None
    if value is None:
        return None
    raise FieldError(f'"{field}" must be a string')


def to_identifier(value: Any, field: str) -> str | None:
    """A string, or a whole number as systems send ids (``"id": 7210448301122``)."""
    if type(value) is str:
        return clean(value) or None
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    raise FieldError(f'"{field}" must be a string')


# Dot-separated atoms, "@", then labels of 1-63 letters, digits and inner hyphens, and a TLD of
# letters. Possessive runs and look-arounds (not nested optional groups) keep it from backtracking.
_EMAIL: Final = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]++(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]++)*+"
    r"@(?:(?!-)[a-z0-9-]{1,63}+(?<!-)\.)+[a-z]{2,63}"
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


def to_tags(value: Any, field: str) -> list[str] | None:
    if type(value) is str:
        parts = value.split(",")
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
        if tag and tag not in tags:
            tags.append(tag)
    return tags or None


_DAY_FIRST: Final = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_YEAR_FIRST_SLASH: Final = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_TEXT_DATE_FORMATS: Final = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y")


def _iso(parts: tuple[int, int, int], clock: tuple[str | None, str | None, str | None]) -> str:
    year, month, day = parts
    hour, minute, second = clock
    if hour is None:
        return date(year, month, day).isoformat()
    return datetime(year, month, day, int(hour), int(minute or 0), int(second or 0)).isoformat()


def to_date(value: Any, field: str) -> str | None:
    """Dates to ISO-8601: a date stays a date (``2024-03-05``), a time keeps its offset if it had one.

    Slash dates are read day first (India, UK) unless only month-first makes sense (``03/25/2024``).
    """
    if type(value) is not str:
        if value is None:
            return None
        raise FieldError(f'"{field}" must be a valid date')
    text = clean(value)
    if not text:
        return None
    try:
        if len(text) == 10 and text[4] == "-":
            return date.fromisoformat(text).isoformat()
        if text[:4].isdigit() and text[4:5] == "-":
            return datetime.fromisoformat(text).isoformat()
        match = _DAY_FIRST.fullmatch(text)
        if match:
            first, second, year = int(match[1]), int(match[2]), int(match[3])
            day, month = (second, first) if second > 12 >= first else (first, second)
            return _iso((year, month, day), (match[4], match[5], match[6]))
        match = _YEAR_FIRST_SLASH.fullmatch(text)
        if match:
            return _iso((int(match[1]), int(match[2]), int(match[3])), (match[4], match[5], match[6]))
        for pattern in _TEXT_DATE_FORMATS:
            try:
                return datetime.strptime(text, pattern).date().isoformat()
            except ValueError:
                continue
    except ValueError:
        pass
    raise FieldError(f'"{field}" must be a valid date')


# --- phone numbers ---------------------------------------------------------------------------

_PHONE_JUNK: Final = str.maketrans("", "", " -().\u00a0\u2010\u2011\u2012\u2013/")
_FORMATS: Final = {
    "E164": phonenumbers.PhoneNumberFormat.E164,
    "INTERNATIONAL": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "NATIONAL": phonenumbers.PhoneNumberFormat.NATIONAL,
}

# Country names people write in a Country column, for the phone region when there is no ISO code.
_COUNTRY_NAMES: Final[dict[str, str]] = {
    "india": "IN",
    "bharat": "IN",
    "unitedstates": "US",
    "unitedstatesofamerica": "US",
    "usa": "US",
    "unitedkingdom": "GB",
    "uk": "GB",
    "greatbritain": "GB",
    "england": "GB",
    "unitedarabemirates": "AE",
    "uae": "AE",
    "singapore": "SG",
    "australia": "AU",
    "canada": "CA",
    "nepal": "NP",
    "bangladesh": "BD",
    "srilanka": "LK",
    "pakistan": "PK",
    "bhutan": "BT",
    "maldives": "MV",
    "saudiarabia": "SA",
    "qatar": "QA",
    "oman": "OM",
    "kuwait": "KW",
    "bahrain": "BH",
    "malaysia": "MY",
    "newzealand": "NZ",
    "germany": "DE",
    "france": "FR",
    "netherlands": "NL",
    "ireland": "IE",
    "southafrica": "ZA",
    "kenya": "KE",
    "indonesia": "ID",
    "thailand": "TH",
    "japan": "JP",
    "hongkong": "HK",
}
_SUPPORTED_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_REGIONS)
_NON_LETTERS: Final = re.compile(r"[^a-z]+")


def region_of(country: Any) -> str | None:
    """The phonenumbers region of a country cell (``IN``, ``in``, ``India``), or None."""
    if type(country) is not str:
        return None
    text = clean(country)
    if len(text) == 2:
        code = text.upper()
        return code if code in _SUPPORTED_REGIONS else None
    if not text:
        return None
    return _COUNTRY_NAMES.get(_NON_LETTERS.sub("", text.lower()))


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

    def __call__(self, value: Any, field: str, region: str | None = None) -> str | None:
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
        region = region or self._default_region
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
        return self._slow(text, field, region)

    def _slow(self, text: str, field: str, region: str) -> str:
        if text.startswith("00") and text[2:3].isdigit():
            text = "+" + text[2:]
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
    if field in PHONE_FIELDS:
        raise ValueError("phone fields are normalised by PhoneNormaliser")
    return to_text
