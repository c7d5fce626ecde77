from __future__ import annotations

import base64
import json

import pytest

from bik_sync.secrets import SecretError, parse_token


@pytest.mark.parametrize(
    ("secret", "token"),
    [
        ("  abc123==\n", "abc123=="),
        (json.dumps({"token": "tok"}), "tok"),
        (json.dumps({"apiKey": "key", "apiSecret": "sec"}), base64.b64encode(b"key:sec").decode()),
    ],
)
def test_each_secret_format_gives_the_basic_token(secret: str, token: str) -> None:
    assert parse_token(secret) == token


@pytest.mark.parametrize("secret", ["", "   ", "{broken", json.dumps({"apiKey": "only-key"})])
def test_unusable_secrets_are_refused_without_echoing_their_value(secret: str) -> None:
    with pytest.raises(SecretError) as info:
        parse_token(secret)
    assert "only-key" not in str(info.value)
