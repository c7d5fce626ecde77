"""The API as DESIGN.md describes it: paths, the UserProperty schema with Joi-style messages, identities.

Written from the contract, not imported from bik_sync: the emulator is BIK's side of the wire, and
sharing the client's definitions would make a drift between the two invisible to the tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import orjson

UPSERT_PATH: Final = "/integrations/bikPlatformFunctions-createOrUpdateUserProperties"
AUTH_PATH: Final = "/integrations/bikPlatformFunctions-authPartnerViaKey"
STATE_PATH: Final = "/__emulator/state"
USERS_PATH: Final = "/__emulator/users"
RESET_PATH: Final = "/__emulator/reset"
FAULTS_PATH: Final = "/__emulator/faults"

#: The Basic token accepted unless another is given: base64 of ``local-key:local-secret``.
DEFAULT_TOKEN: Final = base64.b64encode(b"local-key:local-secret").decode("ascii")
STORE_ID: Final = "emulator-store"

# Field name -> kind, in the order the API's Joi schema checks them (the first problem wins).
SCHEMA: Final[Mapping[str, str]] = {
    "firstName": "name",
    "lastName": "name",
    "source": "string",
    "phoneNumber": "string",
    "alternatePhoneNumber": "string",
    "email": "string",
    "address1": "string",
    "address2": "string",
    "city": "string",
    "state": "string",
    "country": "string",
    "createdAt": "date",
    "updatedAt": "date",
    "emailMarketingConsent": "boolean",
    "smsMarketingConsent": "boolean",
    "tags": "tags",
    "partnerCustomerId": "string",
}
# Matching order for upserts: the most specific identity first.
IDENTITY_KEYS: Final = ("partnerCustomerId", "phoneNumber", "email")
NO_IDENTITY_MESSAGE: Final = '"value" must contain at least one of [phoneNumber, email, partnerCustomerId]'


def identity(record: Mapping[str, object], key: str) -> str | None:
    """The record's value for identity ``key``, or None when it has none (absent, empty, not text)."""
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def validate_record(record: object) -> str | None:
    """The first problem with one user property, as a Joi-style message, or None when valid."""
    if not isinstance(record, dict):
        return '"value" must be of type object'
    if _valid(record):
        return None
    for key, kind in SCHEMA.items():
        if key not in record:
            if kind == "name":
                return f'"{key}" is required'
            continue
        problem = _field_problem(key, kind, record[key])
        if problem:
            return problem
    for key in record:
        if key not in SCHEMA:
            return f'"{key}" is not allowed'
    if not any(identity(record, key) for key in IDENTITY_KEYS):
        return NO_IDENTITY_MESSAGE
    return None


def _valid(record: dict[str, object]) -> bool:
    """True when :func:`validate_record` would find no problem: one pass over the record's own fields
    (the schema-ordered pass then runs only to name the first problem of an invalid record)."""
    for key, value in record.items():
        check = _VALID.get(key)
        if check is None or not check(value):
            return False
    return "firstName" in record and "lastName" in record and any(identity(record, k) for k in IDENTITY_KEYS)


def app_id_problem(payload: Mapping[str, object], required: str | None) -> str | None:
    """``appId`` is optional (a string); an emulator started with ``--app-id X`` requires X."""
    value = payload.get("appId")
    if "appId" in payload and not isinstance(value, str):
        return '"appId" must be a string'
    if required is None:
        return None
    if value is None:
        return '"appId" is required'
    return None if value == required else f'"appId" must be [{required}]'


def dumps(payload: object) -> bytes:
    """Compact UTF-8 JSON, as BIK's Node.js service writes it (json for what orjson refuses: an
    integer beyond 64 bits or a lone surrogate echoed from an invalid record)."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "backslashreplace"
        )


def parse_json_object(body: bytes) -> dict[str, object] | str:
    """A request body that must be one JSON object, or the 400 message."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return '"value" must be valid JSON'
    if not isinstance(payload, dict):
        return '"value" must be of type object'
    return payload


def parse_payload(body: bytes, app_id: str | None = None) -> list[object] | str:
    """The ``userProperties`` list of an upsert body, or the 400 message for a body that is not one."""
    payload = parse_json_object(body)
    if isinstance(payload, str):
        return payload
    problem = app_id_problem(payload, app_id)
    if problem:
        return problem
    if "userProperties" not in payload:
        return '"userProperties" is required'
    records = payload["userProperties"]
    if not isinstance(records, list):
        return '"userProperties" must be an array'
    for key in payload:
        # Job metadata has no business reaching BIK; a strict Joi schema refuses it.
        if key not in ("userProperties", "appId"):
            return f'"{key}" is not allowed'
    return records


def find_value(records: list[object], wanted: str) -> str | None:
    """The Joi-style path of the first field holding ``wanted`` (not the value itself), or None."""
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            if value == wanted or (isinstance(value, list) and wanted in value):
                return f"userProperties[{index}].{key}"
    return None


def _field_problem(key: str, kind: str, value: object) -> str | None:
    if kind == "name":
        if not isinstance(value, str):
            return f'"{key}" must be a string'
        return f'"{key}" is not allowed to be empty' if not value.strip() else None
    if kind == "tags":
        return _tags_problem(key, value)
    # Empty optional strings pass: the real API's stance is unknown and refusing them would turn
    # blank CSV cells into rejects.
    check, problem = _KIND_CHECKS.get(kind, (_anything, ""))
    return None if check(value) else f'"{key}" {problem}'


def _anything(value: object) -> bool:
    return True


def _tags_problem(key: str, value: object) -> str | None:
    if not isinstance(value, list):
        return f'"{key}" must be an array'
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            return f'"{key}[{index}]" must be a string'
    return None


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_KIND_CHECKS: Final[dict[str, tuple[Callable[[object], bool], str]]] = {
    "string": (lambda value: isinstance(value, str), "must be a string"),
    "date": (_is_date, "must be a valid date"),
    "boolean": (lambda value: isinstance(value, bool), "must be a boolean"),
}

# Field -> "this value has no problem", kind by kind as _field_problem judges it.
_VALID_BY_KIND: Final[dict[str, Callable[[object], bool]]] = {
    "name": lambda value: isinstance(value, str) and bool(value.strip()),
    "tags": lambda value: isinstance(value, list) and all(isinstance(tag, str) for tag in value),
    **{kind: check for kind, (check, _) in _KIND_CHECKS.items()},
}
_VALID: Final[dict[str, Callable[[object], bool]]] = {
    key: _VALID_BY_KIND[kind] for key, kind in SCHEMA.items()
}
