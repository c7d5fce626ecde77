"""Job metadata on a work message is ingest's word only when ingest signed it.

The work queue is open to other systems by design, so a message's ``job`` field is input like any
other: anyone could name a live job's batch and have their records counted as that batch. Ingest
signs each message's job metadata together with a digest of its records (HMAC-SHA256, with a key
from Secrets Manager that the template generates); the worker trusts the metadata only when the
signature checks out. A message that fails the check is a message from another system.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from bik_sync.bik import encode_record

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

KeyProvider = Callable[[], bytes]
# The key does not rotate under a running job; an hour's cache keeps Secrets Manager calls rare.
KEY_MAX_AGE_S = 3600


class SigningKeyError(RuntimeError):
    """The signing key cannot be read; the message names the secret, never its value."""


def records_digest(encoded_records: Iterable[bytes]) -> str:
    """SHA-256 of the records as they travel (each :func:`encode_record`'d, joined by commas)."""
    return hashlib.sha256(b",".join(encoded_records)).hexdigest()


def digest_of(records: Iterable[Mapping[str, Any]]) -> str:
    return records_digest(encode_record(record) for record in records)


def signature(key: bytes, job: Mapping[str, Any], digest: str) -> str:
    """The signature of a message's job metadata (``sig`` left out) and its records' digest."""
    fields = {name: value for name, value in job.items() if name != "sig"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n" + digest
    return hmac.new(key, text.encode("ascii"), hashlib.sha256).hexdigest()


def verify(key: bytes, job: Mapping[str, Any], sig: str, digest: str) -> bool:
    return bool(sig) and hmac.compare_digest(signature(key, job, digest), sig)


def make_key_provider(secret_id: str, *, client: SecretsManagerClient | None = None) -> KeyProvider:
    """The signing key from Secrets Manager (Powertools parameters, cached)."""
    provider = SecretsProvider(boto3_client=client) if client is not None else SecretsProvider()

    def key() -> bytes:
        try:
            value = provider.get(secret_id, max_age=KEY_MAX_AGE_S)
        except GetParameterError as exc:
            raise SigningKeyError(
                f"cannot read the signing key {secret_id}: {type(exc.__cause__ or exc).__name__}"
            ) from exc
        if not isinstance(value, str) or len(value) < 32:
            raise SigningKeyError(f"the signing key {secret_id} must be a string of at least 32 characters")
        return value.encode("utf-8")

    return key
