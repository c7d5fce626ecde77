"""The BIK token read from Secrets Manager (moto's server) through Powertools' cache."""

from __future__ import annotations

import uuid

import pytest

from bik_local.stack import RunningStack
from bik_sync.secrets import SecretError, make_token_provider

pytestmark = pytest.mark.integration


def test_a_secret_that_could_not_be_parsed_is_read_again_once_it_is_fixed(stack: RunningStack) -> None:
    # Given a secret whose value is not a token in any known form, and a cache that lasts an hour
    secrets = stack.client("secretsmanager")
    name = f"bik-sync/broken-{uuid.uuid4().hex[:8]}"
    secrets.create_secret(Name=name, SecretString='{"apiKey": "only-the-key"}')
    token = make_token_provider(name, max_age_s=3600, client=secrets)
    with pytest.raises(SecretError, match="apiSecret"):
        token(False)
    # When someone fixes it
    secrets.put_secret_value(SecretId=name, SecretString='{"token": "fixed-token"}')
    # Then the next call reads the fixed value, without waiting for the cache to expire
    assert token(False) == "fixed-token"
    # And a good value is cached as before: a later change is seen only on a refresh
    secrets.put_secret_value(SecretId=name, SecretString='{"token": "rotated"}')
    assert token(False) == "fixed-token"
    assert token(True) == "rotated"
