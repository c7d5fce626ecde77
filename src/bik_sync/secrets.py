"""The BIK token from Secrets Manager, through Powertools parameters with a cache.

The secret may hold the Basic token itself, ``{"token": ...}``, or ``{"apiKey": ..., "apiSecret": ...}``.
A 401 asks for a fresh copy once (``force_refresh``), which is how a rotation is picked up.
The token's value never reaches a log, an exception message or a report.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from bik_sync.bik.client import TokenProvider


class SecretError(RuntimeError):
    """The secret cannot be read or does not hold a token in a known format."""


def parse_token(value: str) -> str:
    text = value.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            raise SecretError("secret looks like JSON but does not parse") from None
        if isinstance(doc.get("token"), str) and doc["token"].strip():
            return str(doc["token"]).strip()
        key, secret = doc.get("apiKey"), doc.get("apiSecret")
        if isinstance(key, str) and isinstance(secret, str) and key and secret:
            return base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
        raise SecretError('secret JSON must hold "token", or "apiKey" and "apiSecret"')
    if not text:
        raise SecretError("secret is empty")
    return text


def make_token_provider(secret_id: str, *, max_age_s: int, client: Any | None = None) -> TokenProvider:
    """A callable returning the token; ``provider(True)`` bypasses the cache."""
    provider = SecretsProvider(boto3_client=client) if client is not None else SecretsProvider()

    # A value that could not be used is not kept: once someone fixes the secret, the next call sees it.
    unusable = False

    def token(force_refresh: bool = False) -> str:
        nonlocal unusable
        try:
            value = provider.get(secret_id, max_age=max_age_s, force_fetch=force_refresh or unusable)
        except GetParameterError as exc:
            raise SecretError(
                f"cannot read secret {secret_id}: {type(exc.__cause__ or exc).__name__}"
            ) from exc
        try:
            if not isinstance(value, str):
                raise SecretError(f"secret {secret_id} is not a string secret")
            parsed = parse_token(value)
        except SecretError:
            unusable = True
            raise
        unusable = False
        return parsed

    return token
