"""The BIK UserProperty contract: field names, kinds and the rules every record must meet."""

from __future__ import annotations

from typing import Final

#: Every key the API accepts, in the order records are built and errors are reported.
API_FIELDS: Final[tuple[str, ...]] = (
    "firstName",
    "lastName",
    "source",
    "phoneNumber",
    "alternatePhoneNumber",
    "email",
    "address1",
    "address2",
    "city",
    "state",
    "country",
    "createdAt",
    "updatedAt",
    "emailMarketingConsent",
    "smsMarketingConsent",
    "tags",
    "partnerCustomerId",
)

REQUIRED_FIELDS: Final[tuple[str, ...]] = ("firstName", "lastName")
IDENTITY_FIELDS: Final[tuple[str, ...]] = ("phoneNumber", "email", "partnerCustomerId")
PHONE_FIELDS: Final[frozenset[str]] = frozenset({"phoneNumber", "alternatePhoneNumber"})
BOOLEAN_FIELDS: Final[frozenset[str]] = frozenset({"emailMarketingConsent", "smsMarketingConsent"})
DATE_FIELDS: Final[frozenset[str]] = frozenset({"createdAt", "updatedAt"})

#: Keys the reader adds to rejects files; a re-uploaded rejects file carries them and they are skipped.
REJECT_KEYS: Final[frozenset[str]] = frozenset({"_row", "_error", "_raw"})

IDENTITY_MESSAGE: Final[str] = "needs at least one of phoneNumber, email or partnerCustomerId"


def from_column(message: str, source: str, field: str) -> str:
    """``"phoneNumber" must be...`` -> ``"phoneNumber" (from "Phone 1 - Value") must be...``."""
    if source == field or not message.startswith('"'):
        return message
    end = message.index('"', 1) + 1
    return f'{message[:end]} (from "{source}"){message[end:]}'


def one_word_name_message(field: str, source: str) -> str:
    return f'"{field}" is required ("{source}" has one word: give the name as first and last name)'


def required_message(field: str) -> str:
    return f'"{field}" is required'


def text_message(field: str) -> str:
    return f'"{field}" must be valid Unicode text (it holds a lone surrogate)'


def nul_message(field: str) -> str:
    return f'"{field}" must not hold NUL characters'


def not_allowed_message(key: str) -> str:
    return f'"{key}" is not allowed'
