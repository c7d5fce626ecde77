"""BikClient against a scripted in-process HTTP fake: retries, backoff, deadline, auth; and the pure
step that decides what each answer means."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

from bik_sync import observability
from bik_sync.bik import (
    AuthFailed,
    BadRequest,
    PayloadTooLarge,
    RetryableFailure,
    UnexpectedStatus,
    check_api_url,
)
from bik_sync.bik.client import (
    Answer,
    BikClient,
    GiveUp,
    Landed,
    TryAgain,
    interpret,
    make_pool,
    out_of_budget,
)
from bik_sync.bik.responses import Verdict

URL = "https://bik.example/integrations/bikPlatformFunctions-createOrUpdateUserProperties"

Step = urllib3.BaseHTTPResponse | Exception | Callable[[dict[str, Any]], urllib3.BaseHTTPResponse]


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> urllib3.HTTPResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return urllib3.HTTPResponse(body=data, status=status, headers=headers or {}, preload_content=True)


def ok(created: int = 0, updated: int = 0, invalid: list[Any] | None = None, failed: list[Any] | None = None,
       status: object = 200) -> urllib3.HTTPResponse:  # fmt: skip
    return response(
        200,
        {
            "status": status,
            "data": {
                "invalidUserProperties": invalid or [],
                "bulkUpsertUPResponse": {
                    "createCount": created,
                    "updateCount": updated,
                    "docsFailedToUpdate": failed or [],
                },
            },
        },
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeHttp(urllib3.PoolManager):
    """Answers each request with the next scripted step and remembers what was sent."""

    def __init__(self, *steps: Step, clock: FakeClock | None = None, latency_s: float = 0.0) -> None:
        super().__init__()
        self.steps = list(steps)
        self.calls: list[dict[str, Any]] = []
        self.clock = clock
        self.latency_s = latency_s

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        call = {"method": method, "url": url, **kwargs}
        self.calls.append(call)
        if self.clock is not None:
            self.clock.now += self.latency_s
        assert self.steps, "the client sent more requests than scripted"
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(call)
        return step


class TopRng(random.Random):
    """uniform(a, b) always returns b, so tests can see the backoff ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Tokens:
    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.current = self.tokens.pop(0)
        self.calls: list[bool] = []

    def __call__(self, force_refresh: bool) -> str:
        self.calls.append(force_refresh)
        if force_refresh and self.tokens:
            self.current = self.tokens.pop(0)
        return self.current


RECORDS = [
    {"firstName": "Asha", "lastName": "Rao", "phoneNumber": "+919876543210"},
    {"firstName": "Ben", "lastName": "Ong", "email": "Ben@Example.com"},
    {"firstName": "Chi", "lastName": "Wu", "partnerCustomerId": "C-3"},
]


def make_client(http: FakeHttp, clock: FakeClock, tokens: Tokens | None = None, **kwargs: Any) -> BikClient:
    kwargs.setdefault("rng", TopRng())
    return BikClient(
        URL,
        tokens or Tokens("tok-1"),
        http=http,
        sleep=clock.sleep,
        clock=clock,
        wall_clock=lambda: 1_700_000_000.0,
        **kwargs,
    )


def all_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every message and every extra field logged, as one string to search."""
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


# -- the happy path ---------------------------------------------------------------------------------


def test_a_200_sends_one_json_post_with_basic_auth_and_returns_the_counts() -> None:
    # Given BIK creates two records and updates one
    clock = FakeClock()
    http = FakeHttp(ok(created=2, updated=1))
    client = make_client(http, clock)

    # When the batch is upserted
    result = client.upsert(RECORDS, deadline=clock() + 60)

    # Then one POST carried the records as the API body, and the counts come back
    (call,) = http.calls
    assert call["method"] == "POST"
    assert call["url"] == URL
    assert call["headers"]["Authorization"] == "Basic tok-1"
    assert call["headers"]["Content-Type"] == "application/json"
    assert json.loads(call["body"]) == {"userProperties": RECORDS}
    assert call["retries"] is False
    assert (result.created, result.updated, result.rejected) == (2, 1, [])
    assert (result.attempts, result.retries) == (1, 0)
    assert clock.sleeps == []


def test_a_status_of_true_counts_as_success_like_200() -> None:
    clock = FakeClock()
    client = make_client(FakeHttp(ok(created=3, status=True)), clock)

    result = client.upsert(RECORDS, deadline=clock() + 60)

    assert result.created == 3


def test_each_request_timeout_is_cut_to_the_time_left_before_the_deadline() -> None:
    # Given 2 seconds left and a 30 s read timeout
    clock = FakeClock()
    http = FakeHttp(ok(created=3))
    client = make_client(http, clock, read_timeout_s=30.0, connect_timeout_s=3.05)

    # When the batch is sent
    client.upsert(RECORDS, deadline=clock() + 2.0)

    # Then the request may not run past the deadline
    timeout = http.calls[0]["timeout"]
    assert timeout.total == pytest.approx(2.0)
    assert timeout.connect_timeout == pytest.approx(2.0)
    assert timeout.read_timeout == pytest.approx(2.0)


# -- retries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        response(500, {"status": 500, "message": "Internal Server Error"}),
        response(502, b"<html>bad gateway</html>"),
        response(503, {}),
        response(429, {"message": "Too Many Requests"}),
        ReadTimeoutError(None, URL, "Read timed out."),  # type: ignore[arg-type]
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
        NewConnectionError(None, "Failed to establish a new connection"),  # type: ignore[arg-type]
        response(200, b'{"status": 200, "data": {"invalidUserProp'),
        response(200, {"status": False, "message": "something broke"}),
        response(200, b"OK"),
    ],
    ids=[
        "500",
        "502-html",
        "503",
        "429",
        "read-timeout",
        "reset",
        "refused",
        "truncated-200",
        "status-false",
        "not-json-200",
    ],
)
def test_a_transient_failure_is_retried_and_the_batch_then_lands(failure: Step) -> None:
    clock = FakeClock()
    http = FakeHttp(failure, ok(created=3))
    client = make_client(http, clock)

    result = client.upsert(RECORDS, deadline=clock() + 60)

    assert len(http.calls) == 2
    assert (result.created, result.attempts, result.retries) == (3, 2, 1)
    assert len(clock.sleeps) == 1


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter_ceilings() -> None:
    # Given BIK fails six times, and an rng that always picks the top of the jitter range
    clock = FakeClock()
    http = FakeHttp(*[response(500, {})] * 6, ok(created=3))
    client = make_client(http, clock, backoff_base_s=0.5, backoff_cap_s=5.0, max_attempts=10)

    # When the batch is sent
    client.upsert(RECORDS, deadline=clock() + 600)

    # Then the waits double from the base and stop at the cap
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_draws_each_wait_between_zero_and_the_ceiling() -> None:
    clock = FakeClock()
    http = FakeHttp(*[response(503, {})] * 5, ok(created=3))
    client = make_client(http, clock, rng=random.Random(7), backoff_base_s=1.0, max_attempts=10)

    client.upsert(RECORDS, deadline=clock() + 600)

    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))
    assert len(set(clock.sleeps)) == len(clock.sleeps)  # jittered, not a fixed schedule


def test_a_429_waits_at_least_its_retry_after_seconds() -> None:
    clock = FakeClock()
    http = FakeHttp(response(429, {}, {"Retry-After": "7"}), ok(created=3))
    client = make_client(http, clock, backoff_base_s=0.25)

    client.upsert(RECORDS, deadline=clock() + 60)

    assert clock.sleeps == [7.0]


def test_a_retry_after_given_as_an_http_date_is_honoured() -> None:
    # Given BIK asks to come back 12 seconds after the wall clock's now
    clock = FakeClock()
    when = formatdate(1_700_000_000.0 + 12, usegmt=True)
    http = FakeHttp(response(503, {}, {"Retry-After": when}), ok(created=3))
    client = make_client(http, clock)

    client.upsert(RECORDS, deadline=clock() + 60)

    assert clock.sleeps == [pytest.approx(12.0)]


def test_a_retry_after_beyond_the_deadline_gives_up_at_once_without_sleeping() -> None:
    clock = FakeClock()
    http = FakeHttp(response(429, {}, {"Retry-After": "120"}))
    client = make_client(http, clock)

    with pytest.raises(RetryableFailure, match="429") as raised:
        client.upsert(RECORDS, deadline=clock() + 30)

    assert clock.sleeps == []
    assert (raised.value.attempts, raised.value.retries) == (1, 0)


def test_a_failing_bik_is_retried_until_the_budget_ends_and_never_past_the_deadline() -> None:
    # Given BIK keeps answering 503 slowly, and 20 seconds of budget
    clock = FakeClock()
    http = FakeHttp(*[response(503, {})] * 100, clock=clock, latency_s=0.8)
    client = make_client(http, clock, rng=random.Random(3), backoff_base_s=0.5, max_attempts=100)
    deadline = clock() + 20

    # When the batch is sent
    with pytest.raises(RetryableFailure, match="time budget"):
        client.upsert(RECORDS, deadline=deadline)

    # Then it tried several times and stopped without passing the deadline
    assert len(http.calls) >= 4
    assert clock() <= deadline


def test_no_request_is_started_when_less_than_the_minimum_try_time_is_left() -> None:
    clock = FakeClock()
    http = FakeHttp()
    client = make_client(http, clock, min_try_s=0.5)

    with pytest.raises(RetryableFailure) as raised:
        client.upsert(RECORDS, deadline=clock() + 0.2)

    assert http.calls == []
    assert raised.value.attempts == 0


def test_retries_stop_after_max_attempts_with_the_last_problem_in_the_message() -> None:
    clock = FakeClock()
    http = FakeHttp(*[response(500, {})] * 3)
    client = make_client(http, clock, max_attempts=3)

    with pytest.raises(RetryableFailure, match="after 3 attempts: BIK answered 500") as raised:
        client.upsert(RECORDS, deadline=clock() + 600)

    assert (raised.value.attempts, raised.value.retries) == (3, 2)


# -- statuses that are not retried ------------------------------------------------------------------


def test_a_400_raises_bad_request_with_biks_message_and_is_not_retried() -> None:
    clock = FakeClock()
    http = FakeHttp(response(400, {"status": 400, "message": '"userProperties[1].emil" is not allowed'}))
    client = make_client(http, clock)

    with pytest.raises(BadRequest) as raised:
        client.upsert(RECORDS, deadline=clock() + 60)

    assert raised.value.message == '"userProperties[1].emil" is not allowed'
    assert len(http.calls) == 1


def test_a_413_raises_payload_too_large_which_the_caller_splits_like_a_400() -> None:
    clock = FakeClock()
    client = make_client(FakeHttp(response(413, b"Payload Too Large")), clock)

    with pytest.raises(PayloadTooLarge) as raised:
        client.upsert(RECORDS, deadline=clock() + 60)

    assert isinstance(raised.value, BadRequest)


@pytest.mark.parametrize("status", [403, 404, 301])
def test_a_status_no_retry_or_split_can_fix_raises_unexpected_status(status: int) -> None:
    clock = FakeClock()
    http = FakeHttp(response(status, {}))
    client = make_client(http, clock)

    with pytest.raises(UnexpectedStatus) as raised:
        client.upsert(RECORDS, deadline=clock() + 60)

    assert raised.value.status == status
    assert len(http.calls) == 1


# -- 401 and token rotation -------------------------------------------------------------------------


def test_a_401_refetches_the_token_once_and_retries_with_the_new_one() -> None:
    # Given the secret was rotated: the cached token is stale, a forced fetch returns the new one
    clock = FakeClock()
    tokens = Tokens("old-token", "new-token")
    http = FakeHttp(response(401, {"message": "Unauthenticated"}), ok(created=3))
    client = make_client(http, clock, tokens)

    # When the batch is sent
    result = client.upsert(RECORDS, deadline=clock() + 60)

    # Then the second request used the refetched token, at once
    assert [c["headers"]["Authorization"] for c in http.calls] == ["Basic old-token", "Basic new-token"]
    assert tokens.calls.count(True) == 1
    assert result.created == 3
    assert clock.sleeps == []


def test_a_second_401_with_a_fresh_token_raises_auth_failed_and_emits_the_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    tokens = Tokens("old-token", "still-wrong")
    http = FakeHttp(response(401, {}), response(401, {}))
    client = make_client(http, clock, tokens)
    observability.metrics.clear_metrics()

    with pytest.raises(AuthFailed):
        client.upsert(RECORDS, deadline=clock() + 60)

    assert len(http.calls) == 2
    assert "AuthFailures" in observability.metrics.metric_set
    observability.metrics.clear_metrics()
    # And the log says what happened without ever showing a token
    logs = all_logged(caplog)
    assert "fetching it again" in logs
    for token in ("old-token", "still-wrong"):
        assert token not in logs


def test_a_token_another_thread_already_refreshed_is_used_without_forcing_another_fetch() -> None:
    # Given the provider's cache already holds a newer token by the time this 401 is handled
    clock = FakeClock()
    cache = {"token": "old"}
    forced: list[bool] = []

    def provider(force_refresh: bool) -> str:
        forced.append(force_refresh)
        return cache["token"]

    def rotate_then_401(call: dict[str, Any]) -> urllib3.BaseHTTPResponse:
        cache["token"] = "new"  # another thread refreshed meanwhile
        return response(401, {})

    http = FakeHttp(rotate_then_401, ok(created=3))
    client = BikClient(URL, provider, http=http, sleep=clock.sleep, clock=clock)

    client.upsert(RECORDS, deadline=clock() + 60)

    assert http.calls[1]["headers"]["Authorization"] == "Basic new"
    assert True not in forced


def test_records_and_tokens_never_appear_in_the_logs_of_a_retried_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    http = FakeHttp(response(500, {}), response(401, {}), ok(created=3))
    client = make_client(http, clock, Tokens("secret-token-1", "secret-token-2"))

    client.upsert(RECORDS, deadline=clock() + 60)

    logs = all_logged(caplog)
    assert "retried" in logs
    for secret in ("secret-token", "9876543210", "Ben@Example.com", "Asha"):
        assert secret not in logs


# -- URL policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://bik.example/x", True),
        ("http://127.0.0.1:8765/x", False),
        ("ftp://127.0.0.1/x", True),
        ("https:///nohost", False),
    ],
)
def test_a_non_https_url_is_refused_unless_loopback_http_is_explicitly_allowed(
    url: str, allow_http: bool
) -> None:
    with pytest.raises(ValueError, match="https"):
        check_api_url(url, allow_http=allow_http)
    with pytest.raises(ValueError, match="https"):
        BikClient(url, lambda _: "t", allow_http=allow_http)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/x", "http://localhost/x", "http://[::1]:9/x"])
def test_a_loopback_http_url_is_accepted_when_allowed(url: str) -> None:
    check_api_url(url, allow_http=True)


def test_the_default_pool_verifies_tls_certificates() -> None:
    pool = make_pool(4)

    assert pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert pool.connection_pool_kw["maxsize"] == 4


# -- what one answer means, decided without a client ---------------------------------------------------

NOW = 1_700_000_000.0


def step_for(answer: Answer, *, attempts: int = 1, token_refreshed: bool = False) -> object:
    return interpret(answer, RECORDS, attempts=attempts, token_refreshed=token_refreshed, now=NOW)


def test_a_200_with_biks_json_lands_with_its_verdict() -> None:
    step = step_for(Answer(200, ok(created=2, updated=1).data))

    assert step == Landed(Verdict(2, 1, [], []))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(None, transport_error="ReadTimeoutError"), TryAgain("ReadTimeoutError talking to BIK")),
        (Answer(503), TryAgain("BIK answered 503")),
        (Answer(429, retry_after="7"), TryAgain("BIK answered 429", retry_after=7.0)),
        (
            Answer(502, retry_after=formatdate(NOW + 12, usegmt=True)),
            TryAgain("BIK answered 502", retry_after=12.0),
        ),
        (Answer(408, retry_after="soon"), TryAgain("BIK answered 408")),
        (Answer(401), TryAgain("BIK answered 401", refresh_token=True)),
    ],
    ids=["transport", "503", "429-seconds", "502-date", "408-unreadable-retry-after", "first-401"],
)
def test_answers_worth_another_try_say_why_and_how_long_to_wait(answer: Answer, expected: TryAgain) -> None:
    assert step_for(answer) == expected


def test_a_200_whose_body_is_not_biks_json_is_tried_again_without_a_token_refresh() -> None:
    step = step_for(Answer(200, b'{"status": 200, "data": {"invalidUserProp'))

    assert isinstance(step, TryAgain)
    assert "not the expected JSON" in step.problem
    assert (step.retry_after, step.refresh_token) == (None, False)


@pytest.mark.parametrize(
    ("answer", "token_refreshed", "error_type", "message"),
    [
        (Answer(401), True, AuthFailed, "BIK answered 401 with a freshly fetched token"),
        (
            Answer(400, b'{"message": "\\"emil\\" is not allowed"}'),
            False,
            BadRequest,
            '"emil" is not allowed',
        ),
        (Answer(413, b"Payload Too Large"), False, PayloadTooLarge, "Payload Too Large"),
        (Answer(404), False, UnexpectedStatus, "BIK answered 404; check BIK_API_URL and the BIK account"),
    ],
    ids=["second-401", "400", "413", "404"],
)
def test_answers_no_retry_can_fix_give_up_with_the_error_and_its_cost(
    answer: Answer, token_refreshed: bool, error_type: type[Exception], message: str
) -> None:
    step = step_for(answer, attempts=3, token_refreshed=token_refreshed)

    assert isinstance(step, GiveUp)
    assert type(step.error) is error_type
    assert (step.error.message, step.error.attempts, step.error.retries) == (message, 3, 2)


def test_a_further_try_is_allowed_only_within_the_attempts_and_the_time_left() -> None:
    def budget(attempts: int, starts_at: float) -> RetryableFailure | None:
        return out_of_budget(
            attempts=attempts,
            max_attempts=3,
            starts_at=starts_at,
            min_try_s=0.5,
            deadline=100.0,
            problem="BIK answered 503",
        )

    assert budget(2, starts_at=99.5) is None
    too_many, too_late = budget(3, starts_at=10.0), budget(2, starts_at=99.6)

    assert too_many is not None and too_late is not None
    assert (too_many.message, too_many.retries) == ("gave up after 3 attempts: BIK answered 503", 2)
    assert (too_late.message, too_late.retries) == (
        "time budget exhausted after 2 attempts: BIK answered 503",
        1,
    )
