"""Talking to BIK's bulk upsert: transport and retries (``client``), the request body (``wire``),
reading the answers (``responses``), matching echoed entries to records sent (``matching``).

The package names what ingest uses too: the body's pieces, the URL check, the errors and the
matching. The client, its answers and the credential check (``auth_check``) are imported from their
modules, by the worker and the laptop commands: ingest never calls BIK, so its cold start does not
import them.
"""

from bik_sync.bik.errors import (
    AuthFailed,
    BadRequest,
    BikError,
    PayloadTooLarge,
    RetryableFailure,
    UnexpectedStatus,
)
from bik_sync.bik.matching import match_rejections
from bik_sync.bik.wire import (
    BODY_PREFIX,
    BODY_SUFFIX,
    auth_url_for,
    body_overhead,
    body_prefix,
    check_api_url,
    encode_body,
    encode_record,
)

__all__ = [
    "BODY_PREFIX",
    "BODY_SUFFIX",
    "AuthFailed",
    "BadRequest",
    "BikError",
    "PayloadTooLarge",
    "RetryableFailure",
    "UnexpectedStatus",
    "auth_url_for",
    "body_overhead",
    "body_prefix",
    "check_api_url",
    "encode_body",
    "encode_record",
    "match_rejections",
]
