"""The BIK emulator keeps the contract in DESIGN.md, over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3

from bik_local.emulator import (
    AUTH_PATH,
    DEFAULT_TOKEN,
    UPSERT_PATH,
    Emulator,
    Faults,
    start_emulator,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
Json = dict[str, Any]


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(maxsize=64, retries=False, timeout=urllib3.Timeout(connect=2, read=10))
    yield pool
    pool.clear()


def person(n: int, **fields: Any) -> Json:
    record: Json = {"firstName": f"First{n}", "lastName": f"Last{n}", "email": f"user{n}@example.com"}
    record.update(fields)
    return record


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def post(
    http: urllib3.PoolManager,
    emulator: Emulator,
    body: object,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    **kwargs: Any,
) -> urllib3.BaseHTTPResponse:
    data = raw if raw is not None else json.dumps(body).encode()
    return http.request("POST", emulator.url, body=data, headers=auth(token or emulator.token), **kwargs)


def upsert(http: urllib3.PoolManager, emulator: Emulator, records: list[Any]) -> Json:
    response = post(http, emulator, {"userProperties": records})
    assert response.status == 200, response.data
    result: Json = response.json()
    return result


def counts(result: Json) -> tuple[int, int]:
    summary = result["data"]["bulkUpsertUPResponse"]
    return summary["createCount"], summary["updateCount"]


def admin(http: urllib3.PoolManager, emulator: Emulator, method: str, path: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    response = http.request(method, emulator.base_url + path, body=data)
    assert response.status == 200, response.data
    return response.json()


# --- auth -------------------------------------------------------------------------------------


def test_auth_endpoint_answers_200_for_the_current_token(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given the emulator's default token (base64 of local-key:local-secret)
    assert emulator.token == DEFAULT_TOKEN
    # When the credential check is called with it
    response = http.request("POST", emulator.base_url + AUTH_PATH, headers=auth(emulator.token))
    # Then BIK's "ok" shape comes back
    assert response.status == 200
    assert response.json() == {"status": "200"}


@pytest.mark.parametrize("path", [AUTH_PATH, UPSERT_PATH])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic wrong"}, {"Authorization": f"Bearer {DEFAULT_TOKEN}"}],
    ids=["no-header", "wrong-token", "wrong-scheme"],
)
def test_both_endpoints_answer_401_without_the_current_basic_token(
    emulator: Emulator, http: urllib3.PoolManager, path: str, headers: dict[str, str]
) -> None:
    # When a request carries no, a wrong, or a non-Basic credential
    response = http.request("POST", emulator.base_url + path, body=b'{"userProperties": []}', headers=headers)
    # Then it is 401 Unauthenticated, counted, and nothing is stored
    assert response.status == 401
    assert response.json() == {"status": 401, "message": "Unauthenticated"}
    assert emulator.state()["faults_served"]["unauthorized"] == 1
    assert emulator.users() == []


# --- whole-body 400s --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", '"value" must be valid JSON'),
        (b"[]", '"value" must be of type object'),
        (b"{}", '"userProperties" is required'),
        (b'{"userProperties": {"firstName": "A"}}', '"userProperties" must be an array'),
        (b'{"userProperties": [], "jobId": "j1"}', '"jobId" is not allowed'),
    ],
    ids=["invalid-json", "not-an-object", "missing-list", "not-a-list", "extra-top-level-key"],
)
def test_a_body_that_is_not_a_userproperties_list_is_400_with_a_joi_message(
    emulator: Emulator, http: urllib3.PoolManager, raw: bytes, message: str
) -> None:
    # When the body does not have the contract's shape
    response = post(http, emulator, None, raw=raw)
    # Then the whole request is refused with a Joi-style message
    assert response.status == 400
    assert response.json() == {"status": 400, "message": message}


# --- per-record validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (person(1, emil="a@b.c"), '"emil" is not allowed'),
        ({"lastName": "L", "email": "a@b.c"}, '"firstName" is required'),
        ({"firstName": "F", "email": "a@b.c"}, '"lastName" is required'),
        (person(1, firstName=""), '"firstName" is not allowed to be empty'),
        (person(1, lastName="  "), '"lastName" is not allowed to be empty'),
        (person(1, lastName=7), '"lastName" must be a string'),
        (person(1, city=None), '"city" must be a string'),
        (person(1, phoneNumber=919876543210), '"phoneNumber" must be a string'),
        (person(1, emailMarketingConsent="yes"), '"emailMarketingConsent" must be a boolean'),
        (person(1, smsMarketingConsent=1), '"smsMarketingConsent" must be a boolean'),
        (person(1, tags="vip,repeat"), '"tags" must be an array'),
        (person(1, tags=[3, "vip"]), '"tags[0]" must be a string'),
        (person(1, tags=["vip", None]), '"tags[1]" must be a string'),
        (person(1, createdAt="yesterday"), '"createdAt" must be a valid date'),
        (person(1, updatedAt=1700000000), '"updatedAt" must be a valid date'),
        (
            {"firstName": "F", "lastName": "L"},
            '"value" must contain at least one of [phoneNumber, email, partnerCustomerId]',
        ),
        ("not a record", '"value" must be of type object'),
        ([person(1)], '"value" must be of type object'),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_an_invalid_record_is_listed_with_its_first_problem(
    emulator: Emulator, http: urllib3.PoolManager, record: object, error: str
) -> None:
    # When a batch holds one invalid record among valid ones
    result = upsert(http, emulator, [person(100), record, person(101)])
    # Then the 200 lists it with the Joi-style message, and only the valid ones are stored
    invalid = result["data"]["invalidUserProperties"]
    assert [entry["error"] for entry in invalid] == [error]
    assert counts(result) == (2, 0)
    assert len(emulator.users()) == 2


def test_an_invalid_entry_echoes_the_record_with_store_id_customer_id_and_error(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given a record with an unknown key
    record = person(1, emil="typo@example.com")
    # When it is sent
    result = upsert(http, emulator, [record])
    # Then the entry is the record plus storeId, a null customerId and the error
    (entry,) = result["data"]["invalidUserProperties"]
    assert entry == {
        **record,
        "storeId": entry["storeId"],
        "customerId": None,
        "error": '"emil" is not allowed',
    }
    assert isinstance(entry["storeId"], str)
    assert result["status"] == 200
    assert result["data"]["bulkUpsertUPResponse"]["docsFailedToUpdate"] == []


def test_the_first_problem_in_schema_order_wins(emulator: Emulator, http: urllib3.PoolManager) -> None:
    # Given a record with an unknown key and a missing name
    record = {"emil": "x", "lastName": "L", "email": "a@b.c"}
    # Then the missing name is reported (Joi checks declared keys before unknown ones)
    result = upsert(http, emulator, [record])
    assert result["data"]["invalidUserProperties"][0]["error"] == '"firstName" is required'


def test_a_record_with_every_allowed_field_is_valid(emulator: Emulator, http: urllib3.PoolManager) -> None:
    # Given a record using every field of the contract, with ISO dates and empty optional strings
    record = {
        "firstName": "Asha",
        "lastName": "Rao",
        "source": "shopify",
        "phoneNumber": "+919876543210",
        "alternatePhoneNumber": "+919876543211",
        "email": "asha@example.com",
        "address1": "12 MG Road",
        "address2": "",
        "city": "Bengaluru",
        "state": "KA",
        "country": "IN",
        "createdAt": "2024-01-05T10:00:00Z",
        "updatedAt": "2024-02-01",
        "emailMarketingConsent": True,
        "smsMarketingConsent": False,
        "tags": ["vip", "repeat"],
        "partnerCustomerId": "shop-1",
    }
    # When it is sent, Then it is created and stored as sent
    result = upsert(http, emulator, [record])
    assert result["data"]["invalidUserProperties"] == []
    assert counts(result) == (1, 0)
    assert emulator.users() == [record]


# --- create vs update -------------------------------------------------------------------------


def test_a_second_batch_with_the_same_people_counts_updates(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given three people already created
    assert counts(upsert(http, emulator, [person(1), person(2), person(3)])) == (3, 0)
    # When the same people come again with one new person
    result = upsert(http, emulator, [person(1), person(2), person(3), person(4)])
    # Then three are updates and one is a create
    assert counts(result) == (1, 3)
    assert emulator.state()["users"] == 4


def test_duplicates_within_one_batch_count_a_create_then_updates(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # When one batch holds the same person three times
    result = upsert(http, emulator, [person(1), person(1, city="Pune"), person(1, city="Goa")])
    # Then the first is a create, the others updates, and the last write wins
    assert counts(result) == (1, 2)
    assert emulator.users() == [person(1, city="Goa")]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"partnerCustomerId": "c-1"}, {"partnerCustomerId": "c-1"}),
        ({"phoneNumber": "+919800000001"}, {"phoneNumber": "+919800000001"}),
        ({"email": "same@example.com"}, {"email": "same@example.com"}),
    ],
    ids=["partnerCustomerId", "phoneNumber", "email"],
)
def test_a_record_updates_the_user_matching_by_each_identity(
    emulator: Emulator, http: urllib3.PoolManager, first: Json, second: Json
) -> None:
    # Given a user known by one identity only
    assert counts(upsert(http, emulator, [{"firstName": "A", "lastName": "B", "city": "Pune", **first}])) == (
        1,
        0,
    )
    # When a record with that identity and new fields arrives
    result = upsert(http, emulator, [{"firstName": "C", "lastName": "D", "country": "IN", **second}])
    # Then it is an update that merges the fields into the same user
    assert counts(result) == (0, 1)
    assert emulator.users() == [{"firstName": "C", "lastName": "D", "city": "Pune", "country": "IN", **first}]


def test_partner_customer_id_wins_over_phone_and_email_when_they_disagree(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given two users, one known by partnerCustomerId, one by email
    upsert(
        http,
        emulator,
        [
            {"firstName": "A", "lastName": "A", "partnerCustomerId": "c-1"},
            {"firstName": "B", "lastName": "B", "email": "b@example.com"},
        ],
    )
    # When a record carries the first one's partnerCustomerId and the second one's email
    result = upsert(
        http,
        emulator,
        [{"firstName": "A2", "lastName": "A", "partnerCustomerId": "c-1", "email": "b@example.com"}],
    )
    # Then the partnerCustomerId match is updated
    assert counts(result) == (0, 1)
    assert emulator.users()[0]["firstName"] == "A2"


def test_a_user_can_later_be_found_by_an_identity_it_gained(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given a user created by phone, then updated with an email
    upsert(http, emulator, [{"firstName": "A", "lastName": "B", "phoneNumber": "+919800000001"}])
    upsert(
        http,
        emulator,
        [{"firstName": "A", "lastName": "B", "phoneNumber": "+919800000001", "email": "a@x.in"}],
    )
    # When a record comes with that email only
    result = upsert(http, emulator, [{"firstName": "A", "lastName": "B", "email": "a@x.in"}])
    # Then it is the same user
    assert counts(result) == (0, 1)
    assert emulator.state()["users"] == 1


# --- inspection -------------------------------------------------------------------------------


def test_state_counts_requests_records_and_outcomes(emulator: Emulator, http: urllib3.PoolManager) -> None:
    # Given two upserts (one with an invalid record) and one credential check
    upsert(http, emulator, [person(1), person(2), {"firstName": "x"}])
    upsert(http, emulator, [person(1)])
    http.request("POST", emulator.base_url + AUTH_PATH, headers=auth(emulator.token))
    # When the state is read over HTTP
    state = admin(http, emulator, "GET", "/__emulator/state")
    # Then the counts add up, faults are off, and the method and the endpoint agree
    assert state == emulator.state()
    keys = ("users", "requests", "upsert_requests", "upsert_peak_in_flight", "records_received")
    assert {k: state[k] for k in keys} == {
        "users": 2,
        "requests": 3,
        "upsert_requests": 2,
        "upsert_peak_in_flight": 1,
        "records_received": 4,
    }
    assert (state["created"], state["updated"], state["invalid"]) == (2, 1, 1)
    assert state["records_received"] == state["created"] + state["updated"] + state["invalid"]
    assert set(state["faults_served"]) == {
        "error",
        "throttle",
        "hang",
        "reset",
        "malformed",
        "poison",
        "fail",
        "unauthorized",
    }
    assert state["faults"]["error_rate"] == 0.0
    assert emulator.token not in json.dumps(state)


def test_users_endpoint_lists_the_stored_properties(emulator: Emulator, http: urllib3.PoolManager) -> None:
    upsert(http, emulator, [person(1), person(2)])
    assert admin(http, emulator, "GET", "/__emulator/users") == [person(1), person(2)] == emulator.users()


def test_reset_clears_users_counters_faults_and_a_rotated_token(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given users, counts, a fault and a rotated token
    upsert(http, emulator, [person(1)])
    emulator.set_faults(error_rate=0.5, latency_ms=5)
    emulator.rotate_token("rotated")
    # When the emulator is reset over HTTP
    state = admin(http, emulator, "POST", "/__emulator/reset")
    # Then everything is back to a fresh start
    assert state["users"] == state["requests"] == state["created"] == 0
    assert state["faults"] == {
        "latency_ms": 0,
        "error_rate": 0.0,
        "throttle_rate": 0.0,
        "retry_after_s": 1.0,
        "hang_rate": 0.0,
        "reset_rate": 0.0,
        "malformed_rate": 0.0,
        "poison_value": None,
        "fail_value": None,
    }
    assert emulator.users() == []
    assert emulator.token == DEFAULT_TOKEN


def test_unknown_paths_are_404(emulator: Emulator, http: urllib3.PoolManager) -> None:
    response = http.request("POST", emulator.base_url + "/integrations/nope", headers=auth(emulator.token))
    assert response.status == 404
    assert response.json()["status"] == 404


# --- fault knobs ------------------------------------------------------------------------------


def test_faults_endpoint_sets_only_the_given_knobs_and_returns_the_state(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # When two knobs are set, then a third
    admin(http, emulator, "POST", "/__emulator/faults", {"error_rate": 0.25, "retry_after_s": 0.5})
    state = admin(http, emulator, "POST", "/__emulator/faults", {"latency_ms": 3})
    # Then all three hold and the rest stay off
    assert state["faults"]["error_rate"] == 0.25
    assert state["faults"]["retry_after_s"] == 0.5
    assert state["faults"]["latency_ms"] == 3
    assert state["faults"]["throttle_rate"] == 0.0


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"eror_rate": 0.1}, '"eror_rate" is not allowed'),
        ({"error_rate": 1.5}, '"error_rate" must be a number between 0 and 1'),
        ({"error_rate": True}, '"error_rate" must be a number between 0 and 1'),
        ({"latency_ms": -1}, '"latency_ms" must be a number >= 0'),
        ({"poison_value": 3}, '"poison_value" must be a string or null'),
        ({"fail_value": []}, '"fail_value" must be a string or null'),
        ({"rotate_token": ""}, '"rotate_token" must be a non-empty string'),
    ],
)
def test_faults_endpoint_refuses_unknown_or_bad_knobs_with_400(
    emulator: Emulator, http: urllib3.PoolManager, knobs: Json, message: str
) -> None:
    response = http.request("POST", emulator.base_url + "/__emulator/faults", body=json.dumps(knobs).encode())
    assert response.status == 400
    assert response.json() == {"status": 400, "message": message}
    assert emulator.state()["faults"] == dataclasses.asdict(Faults())


def test_error_rate_answers_500_and_stores_nothing(emulator: Emulator, http: urllib3.PoolManager) -> None:
    emulator.set_faults(error_rate=1.0)
    response = post(http, emulator, {"userProperties": [person(1)]})
    assert response.status == 500
    assert response.json() == {"status": 500, "message": "Internal Server Error"}
    assert emulator.users() == []
    assert emulator.state()["faults_served"]["error"] == 1


@pytest.mark.parametrize(("retry_after_s", "header"), [(2, "2"), (0.25, "0.25")])
def test_throttle_rate_answers_429_with_retry_after(
    emulator: Emulator, http: urllib3.PoolManager, retry_after_s: float, header: str
) -> None:
    emulator.set_faults(throttle_rate=1.0, retry_after_s=retry_after_s)
    response = post(http, emulator, {"userProperties": [person(1)]})
    assert response.status == 429
    assert response.headers["Retry-After"] == header
    assert emulator.users() == []
    assert emulator.state()["faults_served"]["throttle"] == 1


def test_malformed_rate_answers_a_200_that_is_not_json_after_applying_the_batch(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    emulator.set_faults(malformed_rate=1.0)
    response = post(http, emulator, {"userProperties": [person(1)]})
    assert response.status == 200
    with pytest.raises(ValueError):
        json.loads(response.data)
    # The batch went in (like a reply garbled on the way back), so a retry counts an update
    assert emulator.users() == [person(1)]
    emulator.set_faults(malformed_rate=0.0)
    assert counts(upsert(http, emulator, [person(1)])) == (0, 1)
    assert emulator.state()["faults_served"]["malformed"] == 1


def test_poison_value_refuses_the_whole_batch_with_400_before_validation(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given a poison value, in an otherwise invalid record (validation would only reject that one)
    emulator.set_faults(poison_value="POISON")
    batch = [person(1), person(2, tags=["ok", "POISON"], emil="x")]
    # When the batch is sent
    response = post(http, emulator, {"userProperties": batch})
    # Then the whole batch is a 400 naming the field, not the value, and nothing is stored
    assert response.status == 400
    assert response.json() == {"status": 400, "message": '"userProperties[1].tags" contains an invalid value'}
    assert emulator.users() == []
    # And a batch without it goes through
    assert counts(upsert(http, emulator, [person(1), person(3, city="POISONED")])) == (2, 0)
    assert emulator.state()["faults_served"]["poison"] == 1


def test_fail_value_answers_500_to_every_batch_holding_it_and_stores_nothing(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    # Given a fail value
    emulator.set_faults(fail_value="OUTAGE")
    batch = [person(1), person(2, city="OUTAGE")]
    # When a batch holding it is sent, twice
    statuses = [post(http, emulator, {"userProperties": batch}).status for _ in range(2)]
    # Then it fails every time and nothing of it is stored
    assert statuses == [500, 500]
    assert emulator.users() == []
    # And a batch without it goes through
    assert counts(upsert(http, emulator, [person(1)])) == (1, 0)
    assert emulator.state()["faults_served"]["fail"] == 2


def test_reset_rate_drops_the_connection_without_a_reply(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    emulator.set_faults(reset_rate=1.0)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        post(http, emulator, {"userProperties": [person(1)]})
    assert emulator.users() == []
    assert emulator.state()["faults_served"]["reset"] == 1
    # And the client's next request on a new connection works
    emulator.set_faults(reset_rate=0.0)
    assert counts(upsert(http, emulator, [person(1)])) == (1, 0)


def _handler_threads() -> int:
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def test_hang_rate_gives_no_reply_until_the_client_gives_up(emulator: Emulator) -> None:
    # Given every upsert hangs, and a client that waits 0.3 s
    emulator.set_faults(hang_rate=1.0)
    pool = urllib3.PoolManager(retries=False)
    before = _handler_threads()
    started = time.monotonic()
    # When it posts, Then it times out without any reply and nothing is stored
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        post(pool, emulator, {"userProperties": [person(1)]}, timeout=urllib3.Timeout(connect=1, read=0.3))
    assert time.monotonic() - started < 2
    assert emulator.users() == []
    assert emulator.state()["faults_served"]["hang"] == 1
    # And the emulator frees the hung request's thread once the client has hung up
    pool.clear()
    deadline = time.monotonic() + 2
    while _handler_threads() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _handler_threads() <= before


def test_rotate_token_makes_the_new_token_valid_and_the_old_one_401(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    old = emulator.token
    # When the token is rotated through the faults endpoint
    admin(http, emulator, "POST", "/__emulator/faults", {"rotate_token": "bmV3LWtleTpuZXctc2VjcmV0"})
    # Then the old one is refused on both endpoints and the new one works
    assert post(http, emulator, {"userProperties": [person(1)]}, token=old).status == 401
    assert http.request("POST", emulator.base_url + AUTH_PATH, headers=auth(old)).status == 401
    assert emulator.token == "bmV3LWtleTpuZXctc2VjcmV0"
    assert counts(upsert(http, emulator, [person(1)])) == (1, 0)
    # And the method form rotates too
    emulator.rotate_token("third")
    assert (
        post(http, emulator, {"userProperties": [person(1)]}, token="bmV3LWtleTpuZXctc2VjcmV0").status == 401
    )
    assert emulator.state()["faults_served"]["unauthorized"] == 3


def test_latency_is_added_to_every_upsert_reply_but_not_to_inspection(
    emulator: Emulator, http: urllib3.PoolManager
) -> None:
    emulator.set_faults(latency_ms=200)
    started = time.monotonic()
    upsert(http, emulator, [person(1)])
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert post(http, emulator, {"userProperties": []}, token="wrong").status == 401
    assert time.monotonic() - started >= 0.2
    # And with a latency far longer than any round trip, inspection still answers at once
    emulator.set_faults(latency_ms=5000)
    started = time.monotonic()
    admin(http, emulator, "GET", "/__emulator/state")
    assert time.monotonic() - started < 2.5


def test_faults_never_hit_the_inspection_endpoints(emulator: Emulator, http: urllib3.PoolManager) -> None:
    emulator.set_faults(error_rate=0.5, reset_rate=0.5)
    for _ in range(10):
        admin(http, emulator, "GET", "/__emulator/state")
        admin(http, emulator, "GET", "/__emulator/users")
    assert sum(emulator.state()["faults_served"].values()) == 0


def test_a_seed_makes_the_fault_sequence_reproducible(http: urllib3.PoolManager) -> None:
    def statuses(seed: int) -> list[int]:
        with start_emulator(seed=seed, faults=Faults(error_rate=0.3, throttle_rate=0.3)) as emulator:
            return [post(http, emulator, {"userProperties": [person(n)]}).status for n in range(30)]

    first, again = statuses(11), statuses(11)
    assert first == again
    assert {200, 429, 500} <= set(first)


def test_mixed_rates_serve_roughly_their_shares(http: urllib3.PoolManager) -> None:
    faults = Faults(error_rate=0.2, throttle_rate=0.2, malformed_rate=0.2)
    with start_emulator(seed=3, faults=faults) as emulator:
        for n in range(300):
            post(http, emulator, {"userProperties": [person(n)]})
        served = emulator.state()["faults_served"]
    for name in ("error", "throttle", "malformed"):
        assert 30 <= served[name] <= 90, served


# --- concurrency, keep-alive, lifecycle -------------------------------------------------------


def test_many_parallel_keep_alive_clients_get_exact_counts(emulator: Emulator) -> None:
    # Given 40 clients sending 200 batches of 10 distinct people at once
    pool = urllib3.PoolManager(maxsize=40, block=True, retries=False)
    batches = [[person(b * 10 + i) for i in range(10)] for b in range(200)]

    def send(batch: list[Json]) -> tuple[int, int]:
        return counts(upsert(pool, emulator, batch))

    with ThreadPoolExecutor(max_workers=40) as executor:
        first = list(executor.map(send, batches))
        # When the same people are sent again, all at once
        second = list(executor.map(send, batches))
    # Then every record was created exactly once, then updated exactly once
    assert sum(c for c, _ in first) == 2000 and sum(u for _, u in first) == 0
    assert sum(c for c, _ in second) == 0 and sum(u for _, u in second) == 2000
    state = emulator.state()
    assert (state["users"], state["upsert_requests"], state["created"], state["updated"]) == (
        2000,
        400,
        2000,
        2000,
    )
    pool.clear()


def test_connections_are_kept_alive_between_requests(emulator: Emulator) -> None:
    pool = urllib3.HTTPConnectionPool(emulator.host, emulator.port, maxsize=1, retries=False)
    for n in range(5):
        response = pool.request(
            "POST",
            UPSERT_PATH,
            body=json.dumps({"userProperties": [person(n)]}),
            headers=auth(emulator.token),
        )
        assert response.status == 200
    assert pool.num_connections == 1
    # And a round trip costs no Nagle/delayed-ACK stall (~40 ms each), which would skew benchmarks
    # (the median of 21 round trips: a stall delays every one, a busy machine only some)
    took = []
    for _ in range(21):
        started = time.monotonic()
        assert pool.request("GET", "/__emulator/state").status == 200
        took.append(time.monotonic() - started)
    assert statistics.median(took) < 0.02
    pool.close()


def test_a_chunked_body_is_read(emulator: Emulator) -> None:
    pool = urllib3.HTTPConnectionPool(emulator.host, emulator.port, retries=False)
    body = iter([b'{"userProperties": [', json.dumps(person(1)).encode(), b"]}"])
    response = pool.urlopen("POST", UPSERT_PATH, body=body, headers=auth(emulator.token), chunked=True)
    assert response.status == 200
    assert emulator.users() == [person(1)]
    pool.close()


def test_stop_releases_a_hung_request_and_keep_alive_connections_promptly(http: urllib3.PoolManager) -> None:
    emulator = start_emulator(faults=Faults(hang_rate=1.0))
    sock = socket.create_connection((emulator.host, emulator.port))
    body = b'{"userProperties": []}'
    sock.sendall(
        f"POST {UPSERT_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {emulator.token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    time.sleep(0.1)
    started = time.monotonic()
    emulator.stop()
    sock.settimeout(2)
    assert sock.recv(1024) == b""  # closed without a reply
    assert time.monotonic() - started < 1.5
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection((emulator.host, emulator.port), timeout=1).close()


def test_nothing_is_written_to_stderr_even_on_faults(
    capfd: pytest.CaptureFixture[str], emulator: Emulator
) -> None:
    pool = urllib3.PoolManager(retries=False)
    emulator.set_faults(reset_rate=0.5, error_rate=0.2, malformed_rate=0.2)
    for n in range(20):
        with contextlib.suppress(urllib3.exceptions.ProtocolError):
            post(pool, emulator, {"userProperties": [person(n)]})
    emulator.set_faults(hang_rate=1.0, reset_rate=0.0)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        post(pool, emulator, {"userProperties": [person(1)]}, timeout=0.2)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- CLI --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serves_on_the_given_port_until_a_signal_then_exits_0(
    http: urllib3.PoolManager, stop_signal: signal.Signals
) -> None:
    # Given `bik-sync emulator` started with a port, a token and a fault knob
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "local")])}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bik_sync.cli",
            "emulator",
            "--port",
            str(port),
            "--token",
            "cli-token",
            "--throttle-rate",
            "1",
            "--retry-after-s",
            "3",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        # Then it prints one line with the URL, without the token
        url = re.search(r"http://\S+", line)
        assert url is not None, line
        assert url.group(0) == f"http://127.0.0.1:{port}{UPSERT_PATH}"
        assert "cli-token" not in line
        # And it answers with the token and knobs it was given
        response = http.request(
            "POST", url.group(0), body=b'{"userProperties": []}', headers=auth("cli-token")
        )
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        # When it is signalled, Then it exits 0 with nothing more on stdout and nothing on stderr
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0
        assert out == "" and err == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_a_bad_knob_value() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "local")])}
    result = subprocess.run(
        [sys.executable, "-m", "bik_sync.cli", "emulator", "--port", "0", "--error-rate", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert result.returncode == 2
    assert "error_rate" in result.stderr
