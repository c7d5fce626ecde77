"""The request body BIK expects."""

from __future__ import annotations

from bik_sync.bik import encode_body


def test_the_body_is_the_api_shape_in_compact_utf8_json() -> None:
    body = encode_body([{"firstName": "Zoë", "lastName": "X"}])

    assert body == '{"userProperties":[{"firstName":"Zoë","lastName":"X"}]}'.encode()
