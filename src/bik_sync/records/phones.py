"""Phone numbers and the row's country they are read in.

A number without a country code takes the row's country (see :func:`country_of`), the default
region only when the row names none; :class:`PhoneNormaliser` writes it in the configured format.
Numbers written as digits and separators are checked by :mod:`phone_fast` (phonenumbers' own rules,
compiled per region), anything else by ``phonenumbers.parse``; phonenumbers is imported on the first
number that needs it, not with this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bik_sync.records import phone_fast
from bik_sync.records.countries import country_code
from bik_sync.records.errors import FieldError
from bik_sync.records.normalise import COUNTRY_PLACEHOLDERS, clean, scientific_match, scientific_message

_PHONE_JUNK: Final = str.maketrans("", "", " -().\u00a0\u2010\u2011\u2012\u2013/")
_ASCII_JUNK: Final = bytes(char for char in _PHONE_JUNK if char < 128)
_FORMATS: Final = ("E164", "INTERNATIONAL", "NATIONAL")  # names of phonenumbers.PhoneNumberFormat
_MAX_INPUT: Final = 250  # the longest text phonenumbers.parse reads
# phonenumbers.SUPPORTED_REGIONS, without importing phonenumbers (a unit test keeps the two equal).
_REGIONS: Final = """
    AC AD AE AF AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER
    ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GT GU GW GY HK HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV
    LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK
    SL SM SN SO SR SS ST SV SX SY SZ TA TC TD TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG US UY UZ VA
    VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW
"""
SUPPORTED_REGIONS: Final = frozenset(_REGIONS.split())


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
        style = phone_format.upper()
        if style not in _FORMATS:
            raise KeyError(phone_format)
        self._format = style
        self.formats_e164 = style == "E164"
        self.indian: Callable[[str], str]  # ten digits of an Indian mobile -> the configured format
        if style == "E164":
            self.indian = _indian_e164
        else:
            # phonenumbers groups some series differently (+91 61102 00000 but +91 6110 200 000), so
            # only E.164 has a shortcut; the digits are still known valid, parsing is all that remains.
            def indian(ten: str) -> str:
                import phonenumbers

                number_format = getattr(phonenumbers.PhoneNumberFormat, style)
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
        digits = _without_separators(text)
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
            # Any other ASCII number: phonenumbers' rules, compiled, when they decide (a number is never "").
            return self._by_rules(text, digits, field, region) or self._slow(text, field, region, no_region)
        return self._slow(text, field, region, no_region)

    def _by_rules(self, text: str, digits: str, field: str, region: str | None) -> str | None:
        """Any other number of ASCII digits and separators: phonenumbers' rules without its parser
        (None: phonenumbers.parse must read it)."""
        plus = digits[:1] == "+"
        body = digits[1:] if plus else digits
        if not body.isdigit() or len(text) > _MAX_INPUT:
            return None
        if not plus and text[:2] == "00" and text[2:3].isdigit():  # as _slow reads "0044..."
            plus, body = True, body[2:]
        found = phone_fast.read(body, plus, region) if len(body) >= 3 else None
        if found is None:
            return None
        if found is phone_fast.INVALID:
            raise FieldError(f'"{field}" must be a valid phone number')
        code, national = found
        if self.formats_e164:
            return "+" + code + national
        import phonenumbers

        number = phonenumbers.PhoneNumber(country_code=int(code), national_number=int(national))
        if len(national) > 1 and national[0] == "0":  # as parse keeps an Italian leading zero
            number.italian_leading_zero = True
            zeros = len(national) - len(national.lstrip("0"))
            zeros = min(zeros, len(national) - 1)
            if zeros != 1:
                number.number_of_leading_zeros = zeros
        formatted: str = phonenumbers.format_number(
            number, getattr(phonenumbers.PhoneNumberFormat, self._format)
        )
        return formatted

    def _slow(self, text: str, field: str, region: str | None, no_region: str | None) -> str:
        import phonenumbers

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
        formatted: str = phonenumbers.format_number(
            number, getattr(phonenumbers.PhoneNumberFormat, self._format)
        )
        return formatted


def _without_separators(text: str) -> str:
    """The text without the separators a number is written with (``_PHONE_JUNK``'s)."""
    if text.isascii():  # str.translate looks each character up: bytes.translate deletes in one pass
        return text.encode().translate(None, _ASCII_JUNK).decode()
    return text.translate(_PHONE_JUNK)


def _indian_e164(ten: str) -> str:
    return "+91" + ten
