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


#: Not an API field: a column holding the whole name, split into firstName and lastName.
FULL_NAME: Final = "fullName"
MAPPABLE_FIELDS: Final = (*API_FIELDS, FULL_NAME)

Group = tuple[str, int, tuple[str, ...]]

#: The exports people have, by tool: (field, priority, column names). The README lists them all.
PRESET_GROUPS: Final[tuple[tuple[str, tuple[Group, ...]], ...]] = (
    (
        # Mobiles before other phones (BIK sends WhatsApp and SMS), so the API's own phoneNumber
        # (also HubSpot's "Phone Number") is priority 1, beside Shopify's "Phone".
        "BIK API field names (also snake_case: first_name, phone_number...)",
        tuple((field, 1 if field == "phoneNumber" else 0, (field,)) for field in API_FIELDS),
    ),
    (
        "Shopify customers export (current and older layouts) and Admin API JSON",
        (
            ("partnerCustomerId", 0, ("Customer ID",)),
            ("emailMarketingConsent", 0, ("Accepts Email Marketing", "email_marketing_consent.state")),
            ("smsMarketingConsent", 0, ("Accepts SMS Marketing", "sms_marketing_consent.state")),
            ("address1", 0, ("Default Address Address1",)),
            ("address2", 0, ("Default Address Address2",)),
            ("city", 0, ("Default Address City",)),
            ("state", 0, ("Default Address Province", "Province")),
            ("state", 1, ("Default Address Province Code", "Province Code")),
            ("country", 0, ("Default Address Country",)),
            ("country", 1, ("Default Address Country Code", "Country Code")),
            ("country", 2, ("default_address.country_name",)),
            ("phoneNumber", 1, ("Phone",)),
            ("phoneNumber", 2, ("Default Address Phone",)),
            ("emailMarketingConsent", 1, ("Accepts Marketing",)),
            ("firstName", 3, ("default_address.first_name",)),
            ("lastName", 3, ("default_address.last_name",)),
            (FULL_NAME, 1, ("Billing Name",)),
            (FULL_NAME, 2, ("Shipping Name",)),
            (FULL_NAME, 3, ("default_address.name",)),
        ),
    ),
    (
        "WooCommerce customer exports and REST API JSON (billing.*, shipping.*)",
        (
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
        ),
    ),
    (
        "Google Contacts (Given Name / E-mail 1 - Value layout, and the newer First Name one)",
        (
            ("email", 1, ("E-mail 1 - Value",)),
            ("phoneNumber", 1, ("Phone 1 - Value",)),
            ("phoneNumber", 2, ("Phone 2 - Value",)),
            ("address1", 1, ("Address 1 - Street",)),
            ("address2", 1, ("Address 1 - Extended Address",)),
            ("city", 1, ("Address 1 - City",)),
            ("state", 1, ("Address 1 - Region",)),
            ("country", 1, ("Address 1 - Country",)),
            ("tags", 2, ("Group Membership",)),
        ),
    ),
    (
        "HubSpot contacts export",
        (
            ("partnerCustomerId", 2, ("Record ID", "Record ID - Contact")),
            ("phoneNumber", 0, ("Mobile Phone Number",)),
            ("state", 1, ("State/Region",)),
            ("country", 1, ("Country/Region",)),
            ("createdAt", 1, ("Create Date",)),
            ("updatedAt", 1, ("Last Modified Date",)),
        ),
    ),
    (
        # CC is Mailchimp's country of the sign-up's IP address: last of the country columns, but for a
        # phone written without its code it beats the deployment's default (the file says it).
        "Mailchimp audience export",
        (
            ("createdAt", 3, ("OPTIN_TIME",)),
            ("updatedAt", 3, ("LAST_CHANGED",)),
            ("country", 4, ("CC",)),
        ),
    ),
    (
        "Klaviyo profiles export",
        (("createdAt", 1, ("Date Added",)),),
    ),
    (
        # Each element's "attributes" (JSON:API) is the record; first_name, phone_number, external_id,
        # created and updated map by the names above.
        "Klaviyo Profiles API JSON (data[].attributes)",
        (
            ("address1", 1, ("location.address1",)),
            ("address2", 1, ("location.address2",)),
            ("city", 1, ("location.city",)),
            ("state", 1, ("location.region",)),
            ("country", 1, ("location.country",)),
            ("emailMarketingConsent", 1, ("subscriptions.email.marketing.consent",)),
            ("smsMarketingConsent", 1, ("subscriptions.sms.marketing.consent",)),
        ),
    ),
    (
        "Salesforce and Zoho CRM contacts",
        (
            ("phoneNumber", 2, ("Home Phone",)),
            ("address1", 1, ("Mailing Street",)),
            ("city", 1, ("Mailing City",)),
            ("state", 1, ("Mailing State/Province", "Mailing State")),
            ("country", 1, ("Mailing Country",)),
            ("createdAt", 1, ("Created Date", "Created Time")),
            ("updatedAt", 1, ("Modified Time",)),
            ("source", 1, ("Lead Source",)),
        ),
    ),
    (
        "Outlook contacts",
        (
            ("phoneNumber", 1, ("Primary Phone",)),
            ("phoneNumber", 3, ("Business Phone",)),
            ("address1", 2, ("Home Street",)),
            ("city", 2, ("Home City",)),
            ("state", 2, ("Home State",)),
            ("country", 2, ("Home Country/Region",)),
            ("address1", 3, ("Business Street",)),
            ("city", 3, ("Business City",)),
            ("state", 3, ("Business State",)),
            ("country", 3, ("Business Country/Region",)),
        ),
    ),
    (
        "Magento customer exports",
        (
            ("phoneNumber", 2, ("_address_telephone",)),
            ("address1", 2, ("_address_street",)),
            ("city", 2, ("_address_city",)),
            ("state", 2, ("_address_region",)),
            ("country", 2, ("_address_country_id",)),
            ("partnerCustomerId", 2, ("entity_id",)),
        ),
    ),
    (
        # Not "Address First Name": it folds to Magento's _address_firstname, whose extra-address rows
        # would become people of their own.
        "BigCommerce customer export",
        (("phoneNumber", 2, ("Address Phone",)),),
    ),
    (
        "Chatwoot contacts and Ghost members exports",
        (
            ("partnerCustomerId", 2, ("identifier",)),
            ("emailMarketingConsent", 1, ("subscribed_to_emails",)),
        ),
    ),
    (
        "CRMs and hand-made spreadsheets",
        (
            (FULL_NAME, 0, ("Name", "Full Name", "Customer Name", "Contact Name", "Client Name")),
            (FULL_NAME, 1, ("Display Name", "Member Name", "Buyer Name", "Subscriber Name")),
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
                (
                    "Alternate Phone",
                    "Alternate Mobile",
                    "Alt Phone",
                    "Secondary Phone",
                    "Phone 2",
                    "Other Phone",
                ),
            ),
            ("email", 0, ("Email Address", "Email ID", "Mail ID")),
            ("address1", 1, ("Address", "Address Line 1", "Street", "Street Address")),
            ("address2", 1, ("Address Line 2",)),
            ("city", 1, ("Town", "Town/City")),
            ("state", 1, ("State/Province", "Region")),
            ("country", 1, ("Country Name",)),
            ("createdAt", 2, ("Created", "Signup Date", "Date Joined", "Customer Since")),
            ("updatedAt", 2, ("Updated", "Last Updated", "Last Modified", "Modified At")),
            ("tags", 1, ("Tag", "Labels")),
            ("emailMarketingConsent", 1, ("Email Opt In", "Email Consent", "Email Subscribed", "Newsletter")),
            ("smsMarketingConsent", 1, ("SMS Opt In", "SMS Consent", "SMS Subscribed")),
            (
                "partnerCustomerId",
                2,
                ("Customer No", "Customer Number", "External ID", "Contact ID", "CRM ID", "Lead ID"),
            ),
        ),
    ),
)


def _table(groups: tuple[tuple[str, tuple[Group, ...]], ...]) -> dict[str, tuple[str, int]]:
    table: dict[str, tuple[str, int]] = {}
    for _, entries in groups:
        for field, priority, names in entries:
            for name in names:
                key = name_key(name)
                assert key not in table, f"preset name {name!r} listed twice"
                table[key] = (field, priority)
    return table


#: name key -> (field, priority): the lowest priority of a field's columns wins, the others fill gaps.
PRESETS: Final[dict[str, tuple[str, int]]] = _table(PRESET_GROUPS)

# Bad-name corrections suggested in load_mapping errors.
_FIELD_BY_KEY: Final = {name_key(field): field for field in MAPPABLE_FIELDS}


_POSITION: Final = re.compile(r"#([1-9][0-9]{0,4})")


def column_position(source: str) -> int | None:
    """``"#14"`` in a mapping names the 14th column (1-based) whatever its header says."""
    match = _POSITION.fullmatch(source.strip())
    return int(match[1]) if match else None


class Mapper:
    """Resolves column/key names to ``(field, priority)``; a user mapping may also ignore a name.

    A user mapping may name a CSV column by position (``"#14"``), which beats its header's name:
    that is how a file with two columns of one name maps the second one.
    """

    __slots__ = ("_cache", "_positions", "_user")

    def __init__(self, user_mapping: Mapping[str, str] | None = None) -> None:
        self._user: dict[str, str] = {}
        self._positions: dict[int, str] = {}
        for source, target in (user_mapping or {}).items():
            position = column_position(source)
            if position is None:
                self._user[name_key(source)] = target
            else:
                self._positions[position] = target
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

    def by_position(self, position: int) -> tuple[str, int] | bool | None:
        """The user's target for column ``position`` (1-based); None to ignore it; False: not named."""
        if position not in self._positions:
            return False
        field = self._positions[position]
        return (field, USER_PRIORITY) if field else None

    def explicitly_ignored(self, name: str) -> bool:
        key = name_key(name)
        return key in self._user and not self._user[key]

    def is_user_mapped(self, name: str) -> bool:
        return name_key(name) in self._user


def load_mapping(text: str, origin: str) -> dict[str, str]:
    """Parse a user mapping file: a JSON object ``{"source column": "apiField", ...}``.

    A target of ``null`` or ``""`` means "ignore this column"; ``"fullName"`` means the column holds
    the whole name (split into firstName and lastName); a source ``"#14"`` is the 14th column.
    Raises ValueError naming ``origin`` and the bad entry.
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
        if target not in MAPPABLE_FIELDS:
            hint = _FIELD_BY_KEY.get(name_key(target))
            suggestion = f" (did you mean {hint!r}?)" if hint else f" (fields: {', '.join(MAPPABLE_FIELDS)})"
            raise ValueError(f"{origin}: {source!r} maps to {target!r}, which is not a BIK field{suggestion}")
        mapping[source] = target
    return mapping
