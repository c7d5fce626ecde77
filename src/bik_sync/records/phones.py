"""Phone numbers and the row's country they are read in.

A number without a country code takes the row's country (see :func:`country_of`), the default
region only when the row names none; :class:`PhoneNormaliser` writes it in the configured format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import phonenumbers

from bik_sync.records.countries import country_code
from bik_sync.records.errors import FieldError
from bik_sync.records.normalise import COUNTRY_PLACEHOLDERS, clean, scientific_match, scientific_message

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
    conflict: str | None = None  # "US and IN" when its country columns name different countries

    @property
    def phone_region(self) -> str | None:
        """The region a number without a country code is read in (None: it cannot be)."""
        return None if self.conflict else self.region

    @property
    def no_region_reason(self) -> str | None:
        """Why a number without a country code cannot be read in this row, or None when it can."""
        if self.conflict:
            return f"the row names two countries ({self.conflict})"
        if self.unrecognised is not None:
            return f"the row's country {_shown(self.unrecognised)}is not a country we recognise"
        return None


NO_COUNTRY: Final = RowCountry()
_LETTERS_ONLY: Final = re.compile(r"[^a-z]+")
_NOTHING_WORDS: Final = frozenset(
    {"na", "nil", "null", "none", "blank", "nan", "notavailable", "notapplicable"}
)


def country_of(value: Any) -> RowCountry:
    """What one country cell says: a known country, an unknown one, or nothing (empty, placeholder)."""
    if type(value) is not str:
        return NO_COUNTRY
    text = value.strip().removeprefix("'").strip()
    if not text or text in COUNTRY_PLACEHOLDERS:
        return NO_COUNTRY
    code = country_code(text)
    if code:
        return RowCountry(region=code)
    if _LETTERS_ONLY.sub("", text.lower()) in _NOTHING_WORDS:
        return NO_COUNTRY  # "N.A.", "#NA", "-NA-", "(none)": not available, written another way
    return RowCountry(unrecognised=text)


_COUNTRY_LIKE: Final = re.compile(r"[^\W\d_][^\d@]{0,39}")


def _shown(country: str) -> str:
    """The country quoted when it reads like one; a cell of digits or an address is not repeated."""
    return f'"{country}" ' if _COUNTRY_LIKE.fullmatch(country) else ""


def no_country_code_message(field: str, reason: str) -> str:
    return (
        f'"{field}" has no country code and {reason}: write the number with its country code (+44...) '
        "or the country as a name or ISO code"
    )


# "+44 ...", "(+44) ...", "Tel: +44 ...", a fullwidth plus: the number says its own country.
_HAS_CODE: Final = re.compile(r"\W*(?:tel\W*)?[+\uff0b]", re.IGNORECASE).match


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
        self, value: Any, field: str, region: str | None = None, no_region: str | None = None
    ) -> str | None:
        """``region``: the row's country, when it decides; ``no_region``: why the row's countries cannot
        decide (``RowCountry.no_region_reason``).

        A number without a country code takes the row's country, the default region only when the
        row names no country at all, and is rejected when the row names one we do not know, or two.
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
        if region is None and no_region is None:
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
        return self._slow(text, field, region, no_region)

    def _slow(self, text: str, field: str, region: str | None, no_region: str | None) -> str:
        if ":::" in text:  # Google Contacts joins a contact's numbers with " ::: ": the first is theirs
            text = next((part.strip() for part in text.split(":::") if part.strip()), "")
        if ("E" in text or "e" in text) and scientific_match(text.replace(" ", "")):
            raise FieldError(scientific_message(field))
        if text.startswith("00") and text[2:3].isdigit():
            text = "+" + text[2:]
        if region is None and not _HAS_CODE(text):
            raise FieldError(no_country_code_message(field, no_region or "the row names no country"))
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
