"""The emulator accepts BIK's optional appId, and with --app-id requires that value, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import urllib3

from bik_local.emulator import AUTH_PATH, Emulator, start_emulator
from bik_sync.bik.auth_check import check_credentials

pytestmark = pytest.mark.integration

RECORD = {"firstName": "Asha", "lastName": "Rao", "email": "asha@example.com"}


@pytest.fixture
def strict() -> Iterator[Emulator]:
    with start_emulator(app_id="store-7") as server:
        yield server


def _post(url: str, token: str, body: object) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    return urllib3.request("POST", url, body=json.dumps(body).encode(), headers=headers, timeout=5.0)


def test_an_app_id_is_accepted_when_the_emulator_requires_none(emulator: Emulator) -> None:
    # Given an emulator without --app-id, when a body carries an appId
    response = _post(emulator.url, emulator.token, {"appId": "anything", "userProperties": [RECORD]})
    # Then it is taken like any other
    assert response.status == 200
    assert emulator.state()["created"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"userProperties": [RECORD]}, '"appId" is required'),
        ({"appId": "other", "userProperties": [RECORD]}, '"appId" must be [store-7]'),
        ({"appId": 7, "userProperties": [RECORD]}, '"appId" must be a string'),
    ],
)
def test_with_app_id_the_upsert_requires_that_value(strict: Emulator, body: object, message: str) -> None:
    # Given an emulator started with --app-id store-7, when a body lacks it or names another
    response = _post(strict.url, strict.token, body)
    # Then it is a 400 with a Joi-style message, and nothing is stored
    assert response.status == 400
    assert response.json()["message"] == message
    assert strict.state()["users"] == 0


def test_with_app_id_the_right_value_goes_in_and_the_auth_check_needs_it(strict: Emulator) -> None:
    # Given an emulator requiring store-7
    # When a body names it, and the credentials are checked with and without it
    response = _post(strict.url, strict.token, {"appId": "store-7", "userProperties": [RECORD]})
    good = check_credentials(strict.url, strict.token, app_id="store-7", allow_http=True)
    missing = check_credentials(strict.url, strict.token, allow_http=True)
    bad_token = check_credentials(strict.url, "d3Jvbmc6d3Jvbmc=", app_id="store-7", allow_http=True)

    # Then the record is stored, the check passes only with the app id and the right token
    assert response.status == 200 and strict.state()["created"] == 1
    assert good.verdict == "ok" and good.url == strict.base_url + AUTH_PATH
    assert missing.verdict == "refused" and '"appId" is required' in missing.detail
    assert bad_token.verdict == "refused" and bad_token.detail == "BIK answered 401"


def test_an_unreachable_bik_is_neither_ok_nor_refused() -> None:
    # Given a port nothing listens on (an emulator stopped)
    with start_emulator() as gone:
        url = gone.url
    # When the credentials are checked there, then BIK cannot be reached, with the cause
    result = check_credentials(url, "dG9rZW4=", allow_http=True, timeout_s=2.0)
    assert result.verdict == "unreachable"
    assert "Connection" in result.detail or "refused" in result.detail
