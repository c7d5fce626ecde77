"""The request body BIK expects."""

from __future__ import annotations

import json

from bik_sync.bik import auth_url_for, body_overhead, encode_body


def test_the_body_is_the_api_shape_in_compact_utf8_json() -> None:
    body = encode_body([{"firstName": "Zoë", "lastName": "X"}])

    assert body == '{"userProperties":[{"firstName":"Zoë","lastName":"X"}]}'.encode()


def test_the_auth_url_sits_beside_the_upsert_url() -> None:
    # Given BIK's upsert URL and an emulator's, when the authPartnerViaKey URL is derived
    # Then only the last path segment changes
    upsert = "https://bikapi.bikayi.app/integrations/bikPlatformFunctions-createOrUpdateUserProperties"
    assert (
        auth_url_for(upsert)
        == "https://bikapi.bikayi.app/integrations/bikPlatformFunctions-authPartnerViaKey"
    )
    assert auth_url_for("http://127.0.0.1:8765/integrations/x/") == (
        "http://127.0.0.1:8765/integrations/bikPlatformFunctions-authPartnerViaKey"
    )


def test_an_app_id_is_json_encoded_at_the_head_of_the_body() -> None:
    # Given an app id with a quote in it, when a body is built, then it is valid JSON with that appId
    body = encode_body([{"firstName": "A", "lastName": "B"}], app_id='st"ore')
    assert json.loads(body) == {"appId": 'st"ore', "userProperties": [{"firstName": "A", "lastName": "B"}]}
    assert len(body) == body_overhead('st"ore') + len(b'{"firstName":"A","lastName":"B"}')
