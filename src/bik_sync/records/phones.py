"""Phone numbers and the row's country they are read in.

A number without a country code takes the row's country (see :func:`country_of`), the default
region only when the row names none; :class:`PhoneNormaliser` writes it in the configured format.
"""

from __future__ import annotations

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
