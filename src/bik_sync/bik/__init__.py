"""Talking to BIK's bulk upsert: transport and retries (``client``), the request body (``wire``),
reading the answers (``responses``), matching echoed entries to records sent (``matching``)."""

from bik_sync.bik.auth_check import CredentialCheck, check_credentials
from bik_sync.bik.client import BikClient, TokenProvider, check_api_url, make_pool
from bik_sync.bik.errors import (
    AuthFailed,
    BadRequest,
    BikError,
    PayloadTooLarge,
    RetryableFailure,
    UnexpectedStatus,
)
from bik_sync.bik.matching import match_rejections
from bik_sync.bik.responses import BatchResult, Verdict, error_message, parse_retry_after, parse_success
from bik_sync.bik.wire import (
    BODY_PREFIX,
    BODY_SUFFIX,
    auth_url_for,
    body_overhead,
    body_prefix,
    encode_body,
    encode_record,
)

__all__ = [
    "BODY_PREFIX",
    "BODY_SUFFIX",
    "AuthFailed",
    "BadRequest",
    "BatchResult",
    "BikClient",
    "BikError",
    "CredentialCheck",
    "PayloadTooLarge",
    "RetryableFailure",
    "TokenProvider",
    "UnexpectedStatus",
    "Verdict",
    "auth_url_for",
    "body_overhead",
    "body_prefix",
    "check_api_url",
    "check_credentials",
    "encode_body",
    "encode_record",
    "error_message",
    "make_pool",
    "match_rejections",
    "parse_retry_after",
    "parse_success",
]
