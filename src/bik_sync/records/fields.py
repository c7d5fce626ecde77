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

IDENTITY_MESSAGE: Final[str] = '"value" must contain at least one of [phoneNumber, email, partnerCustomerId]'


def required_message(field: str) -> str:
    return f'"{field}" is required'


def text_message(field: str) -> str:
    return f'"{field}" must be valid Unicode text (it holds a lone surrogate)'


def not_allowed_message(key: str) -> str:
    return f'"{key}" is not allowed'
