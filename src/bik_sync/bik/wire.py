"""The request body BIK expects, built from pieces whose sizes the caller can add up before sending.

``{"userProperties":[`` + the records joined by commas + ``]}``; with a store's application id,
``{"appId":"ID","userProperties":[`` opens it instead (BIK's older documentation lists ``appId`` in
this body, and ``authPartnerViaKey`` requires it). And the URLs it is sent to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from bik_sync import jsonbytes

BODY_PREFIX = b'{"userProperties":['
BODY_SUFFIX = b"]}"
AUTH_PATH_SEGMENT = "bikPlatformFunctions-authPartnerViaKey"


def body_prefix(app_id: str = "") -> bytes:
    """What opens the body: the records follow it, then BODY_SUFFIX."""
    if not app_id:
        return BODY_PREFIX
    return b'{"appId":' + jsonbytes.dumps(app_id) + b',"userProperties":['


def body_overhead(app_id: str = "") -> int:
    """The bytes of a body that are not records or the commas between them."""
    return len(body_prefix(app_id)) + len(BODY_SUFFIX)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the bytes of ``json.dumps(record, separators=(",", ":"), ensure_ascii=False)``
    (signatures and digests are over these bytes), made by orjson (:mod:`bik_sync.jsonbytes`)."""
    return jsonbytes.dumps(record)


def encode_body(records: Sequence[Mapping[str, Any]], app_id: str = "") -> bytes:
    """The request body: prefix + the records joined by commas + suffix (so its size is computable)."""
    return body_prefix(app_id) + b",".join(encode_record(r) for r in records) + BODY_SUFFIX


def auth_url_for(api_url: str) -> str:
    """The ``authPartnerViaKey`` URL beside an upsert URL (the last path segment replaced)."""
    base, _, _ = api_url.split("?", 1)[0].rstrip("/").rpartition("/")
    return f"{base}/{AUTH_PATH_SEGMENT}"


def check_api_url(url: str, *, allow_http: bool) -> None:
    """ValueError unless ``url`` is https (or http to a loopback host, when ``allow_http``)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and allow_http and _is_loopback(parts.hostname):
        return
    raise ValueError(
        "the BIK API URL must use https (plain http only for a loopback host with allow_http), "
        f"got scheme {parts.scheme!r} host {parts.hostname!r}"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
