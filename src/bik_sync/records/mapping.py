"""Column and key names to API fields: presets for real exports, plus a user mapping file.

Names are compared after case folding and dropping everything but letters and digits, so
``First Name``, ``first_name``, ``FIRST-NAME`` and ``firstName`` are one name. Each preset entry
has a priority: where several columns map to one field, the lowest priority number wins and the
others fill only gaps (WooCommerce ``first_name`` before ``billing_first_name``; Shopify ``Phone``
before ``Default Address Phone``). A user mapping beats every preset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from bik_sync.records.fields import API_FIELDS

USER_PRIORITY: Final = -1
_NON_ALNUM: Final = re.compile(r"[\W_]+")


def name_key(name: str) -> str:
    """The comparison key of a column or JSON key name."""
    return _NON_ALNUM.sub("", name.casefold())


def _table(*groups: tuple[str, int, tuple[str, ...]]) -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for field, priority, names in groups:
        for name in names:
            key = name_key(name)
            assert key not in table, f"preset name {name!r} listed twice"
            table[key] = (field, priority)
    return table


#: name key -> (API field, priority). API names themselves are priority 0.
PRESETS: Final[dict[str, tuple[str, int]]] = _table(
    # --- the API's own names (also WooCommerce first_name/last_name, which fold to the same key)
    *((field, 0, (field,)) for field in API_FIELDS),
    # --- Shopify customers export, current layout
    ("partnerCustomerId", 0, ("Customer ID",)),
    ("emailMarketingConsent", 0, ("Accepts Email Marketing",)),
    ("smsMarketingConsent", 0, ("Accepts SMS Marketing",)),
    ("address1", 0, ("Default Address Address1",)),
    ("address2", 0, ("Default Address Address2",)),
    ("city", 0, ("Default Address City",)),
    ("state", 0, ("Default Address Province",)),
    ("state", 1, ("Default Address Province Code",)),
    ("country", 0, ("Default Address Country",)),
    ("country", 1, ("Default Address Country Code",)),
    ("phoneNumber", 1, ("Phone",)),
    ("phoneNumber", 2, ("Default Address Phone",)),
    # --- Shopify customers export, older layout (First Name, Address1, Province, Country, Phone ...)
    ("state", 0, ("Province",)),
    ("state", 1, ("Province Code",)),
    ("country", 1, ("Country Code",)),
    ("emailMarketingConsent", 1, ("Accepts Marketing",)),
    # --- WooCommerce customer exports
    ("firstName", 1, ("billing_first_name",)),
    ("firstName", 2, ("shipping_first_name",)),
    ("lastName", 1, ("billing_last_name",)),
    ("lastName", 2, ("shipping_last_name",)),
    ("email", 0, ("user_email",)),
    ("email", 1, ("billing_email",)),
    ("phoneNumber", 1, ("billing_phone",)),
    ("phoneNumber", 3, ("shipping_phone",)),
    ("address1", 1, ("billing_address_1",)),
    ("address1", 2, ("shipping_address_1",)),
    ("address2", 1, ("billing_address_2",)),
    ("address2", 2, ("shipping_address_2",)),
    ("city", 1, ("billing_city",)),
    ("city", 2, ("shipping_city",)),
    ("state", 1, ("billing_state",)),
    ("state", 2, ("shipping_state",)),
    ("country", 1, ("billing_country",)),
    ("country", 2, ("shipping_country",)),
    ("partnerCustomerId", 1, ("user_id",)),
    ("partnerCustomerId", 3, ("id",)),
    ("createdAt", 0, ("date_created",)),
    ("createdAt", 1, ("user_registered", "date_created_gmt")),
    ("updatedAt", 0, ("date_modified",)),
    ("updatedAt", 1, ("date_modified_gmt",)),
    # --- CRMs and hand-made spreadsheets
    ("firstName", 1, ("First", "FName", "Given Name", "Forename")),
    ("lastName", 1, ("Last", "LName", "Surname", "Family Name")),
    (
        "phoneNumber",
        0,
        ("Mobile", "Mobile Number", "Mobile No", "Mobile Phone", "Cell", "Cell Phone"),
    ),
    (
        "phoneNumber",
        1,
        (
            "Phone No",
            "Phone Num",
            "Contact Number",
            "Contact No",
            "WhatsApp",
            "WhatsApp Number",
            "Telephone",
            "Tel",
        ),
    ),
    (
        "alternatePhoneNumber",
        0,
        ("Alternate Phone", "Alternate Mobile", "Alt Phone", "Secondary Phone", "Phone 2", "Other Phone"),
    ),
    ("email", 0, ("Email Address", "Email ID", "Mail ID")),
    ("address1", 1, ("Address", "Address Line 1", "Street", "Street Address")),
    ("address2", 1, ("Address Line 2",)),
    ("city", 1, ("Town", "Town/City")),
    ("state", 1, ("State/Province", "Region")),
    ("country", 1, ("Country Name",)),
    ("createdAt", 2, ("Created", "Created Date", "Signup Date", "Date Joined", "Customer Since")),
    ("updatedAt", 2, ("Updated", "Last Updated", "Last Modified", "Modified At")),
    ("tags", 1, ("Tag", "Labels")),
    ("emailMarketingConsent", 1, ("Email Opt In", "Email Consent", "Email Subscribed", "Newsletter")),
    ("smsMarketingConsent", 1, ("SMS Opt In", "SMS Consent", "SMS Subscribed")),
    (
        "partnerCustomerId",
        2,
        ("Customer No", "Customer Number", "External ID", "Contact ID", "CRM ID", "Lead ID"),
    ),
)

# Bad-name corrections suggested in load_mapping errors.
_FIELD_BY_KEY: Final = {name_key(field): field for field in API_FIELDS}


class Mapper:
    """Resolves column/key names to ``(field, priority)``; a user mapping may also ignore a name."""

    __slots__ = ("_cache", "_user")

    def __init__(self, user_mapping: Mapping[str, str] | None = None) -> None:
        self._user: dict[str, str] = {}
        for source, target in (user_mapping or {}).items():
            self._user[name_key(source)] = target
        self._cache: dict[str, tuple[str, int] | None] = {}

    def target(self, name: str) -> tuple[str, int] | None:
        try:
            return self._cache[name]
        except KeyError:
            pass
        key = name_key(name)
        found: tuple[str, int] | None
        if key in self._user:
            field = self._user[key]
            found = (field, USER_PRIORITY) if field else None
        else:
            found = PRESETS.get(key) if key else None
        if len(self._cache) < 10_000:
            self._cache[name] = found
        return found

    def explicitly_ignored(self, name: str) -> bool:
        key = name_key(name)
        return key in self._user and not self._user[key]


def load_mapping(text: str, origin: str) -> dict[str, str]:
    """Parse a user mapping file: a JSON object ``{"source column": "apiField", ...}``.

    A target of ``null`` or ``""`` means "ignore this column". Raises ValueError naming ``origin``
    and the bad entry.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{origin}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if isinstance(data, dict) and set(data) == {"mapping"} and isinstance(data["mapping"], dict):
        data = data["mapping"]
    if not isinstance(data, dict):
        raise ValueError(f'{origin}: a mapping is a JSON object like {{"Mobile No": "phoneNumber"}}')
    mapping: dict[str, str] = {}
    for source, target in data.items():
        if not source.strip():
            raise ValueError(f"{origin}: an empty column name maps to {target!r}")
        if target is None or target == "":
            mapping[source] = ""
            continue
        if not isinstance(target, str):
            raise ValueError(f"{origin}: {source!r} maps to {target!r}, which is not a field name")
        if target not in API_FIELDS:
            hint = _FIELD_BY_KEY.get(name_key(target))
            suggestion = f" (did you mean {hint!r}?)" if hint else f" (fields: {', '.join(API_FIELDS)})"
            raise ValueError(f"{origin}: {source!r} maps to {target!r}, which is not a BIK field{suggestion}")
        mapping[source] = target
    return mapping
