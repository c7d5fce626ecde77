"""Value normalisation: one converter per kind of field, shared by file rows and queue records.

A converter takes a raw value (a CSV cell, or any JSON value) and the API field name, and returns
the normalised value, or ``None`` when the value is empty (the field is then absent), or raises
:class:`FieldError` with an API-style message. Converters are plain functions so a reader can
bind them once per column and call them in its inner loop. Dates are read in ``dates``, phone
numbers (which need the row's country) in ``phones``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

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
# The same classes as [a-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-] (local part), [a-z0-9\u00a0-\uffff-]
# (label) and [a-z\u00a0-\uffff] (top-level label), written as what they exclude: a class with a range
# of 65,000 characters costs ~14 ms to compile at every cold start, its complement ~1 ms.
_LOCAL_CHAR = r"[^\x00-\x20\"(),.:;<>@\[\\\]A-Z\x7f\U00010000-\U0010ffff]"
_LABEL_CHAR = r"[^\x00-\x2c./:-`{-\x9f\U00010000-\U0010ffff]"
_TOP_CHAR = r"[^\x00-`{-\x9f\U00010000-\U0010ffff]"
_EMAIL: Final = re.compile(
    rf"{_LOCAL_CHAR}++(?:\.{_LOCAL_CHAR}++)*+"
    rf"@(?:(?!-){_LABEL_CHAR}{{1,63}}+(?<!-)\.)+(?:{_TOP_CHAR}{{2,63}}|xn--[a-z0-9-]{{1,59}})"
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
        # Google Contacts joins a contact's addresses of one label with " ::: ": the first is
        # theirs (as with phones), the others have nowhere to go (BIK keeps one email). A comma or
        # a semicolon between two addresses is no export's way of writing them: still a reject.
        if ":::" in text:
            text = next((part.strip() for part in text.split(":::") if part.strip()), "")
            if email_match(text) is not None:
                return text
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


def converter_for(field: str) -> Converter:
    """The converter of a non-phone field (phones need a region: see PhoneNormaliser)."""
    if field == "email":
        return to_email
    if field in BOOLEAN_FIELDS:
        return to_boolean
    if field in DATE_FIELDS:
        from bik_sync.records.dates import to_date  # here: dates imports this module

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
