"""The BIK API client: one POST of a batch of user properties, retried until it lands or the budget ends.

One :class:`urllib3.PoolManager` per client (keep-alive, TLS verified, thread-safe), so a worker
sends its batches concurrently over a handful of warm connections.

Retries are an explicit loop rather than :class:`urllib3.util.Retry`: Retry knows statuses and
``Retry-After`` but not the invocation's deadline (a try must never start when it cannot finish,
and a wait must never sleep past it), nor the token refresh on a 401, nor a 200 whose body is not
the JSON we expect. Doing those beside urllib3's loop would split one policy across two places.
What each answer means is decided by :func:`interpret`, a pure function; the loop only acts on it.

Nothing here logs a token or a record: log lines carry status codes, attempt numbers and counts.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from aws_lambda_powertools.metrics import MetricUnit

from bik_sync.bik.errors import (
    AuthFailed,
    BadRequest,
    BikError,
    PayloadTooLarge,
    RetryableFailure,
    UnexpectedStatus,
)
from bik_sync.bik.responses import BatchResult, Verdict, error_message, parse_retry_after, parse_success
from bik_sync.bik.wire import check_api_url, encode_body
from bik_sync.observability import add_metric, logger

TokenProvider = Callable[[bool], str]

# 408/425/429 and every 5xx are worth another try; 413 is split like a 400 by the caller.
_RETRYABLE_4XX = frozenset({408, 425, 429})


# -- what one try's answer means (pure) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One try as :func:`interpret` sees it: BIK's response, or the transport error that replaced it."""

    status: int | None  # None: no response at all
    data: bytes = b""
    retry_after: str | None = None  # the raw header
    transport_error: str = ""  # the exception's type name when there was no response


@dataclass(frozen=True, slots=True)
class Landed:
    """BIK took the batch; its verdict on each record."""

    verdict: Verdict


@dataclass(frozen=True, slots=True)
class TryAgain:
    """Worth another try: after ``retry_after`` seconds at least, or at once with a refetched token."""

    problem: str
    retry_after: float | None = None
    refresh_token: bool = False


@dataclass(frozen=True, slots=True)
class GiveUp:
    """No retry can help; ``error`` is what the caller gets."""

    error: BikError


Step = Landed | TryAgain | GiveUp


def interpret(
    answer: Answer,
    records: Sequence[Mapping[str, Any]],
    *,
    attempts: int,
    token_refreshed: bool,
    now: float,
) -> Step:
    """What the ``attempts``-th try's answer means. ``now`` is wall-clock time, for ``Retry-After`` dates."""
    status = answer.status
    if status is None:
        return TryAgain(f"{answer.transport_error} talking to BIK")
    retries = attempts - 1
    if status == 200:
        verdict = parse_success(answer.data, records)
        if verdict is None:
            # BIK may have stored the batch: a retry is safe (an upsert), it only counts updates.
            return TryAgain(
                "BIK answered 200 with a body that is not the expected JSON"
                " (the records may be stored; sending them again is safe)"
            )
        return Landed(verdict)
    if status == 401:
        if token_refreshed:
            message = "BIK answered 401 with a freshly fetched token"
            return GiveUp(AuthFailed(message, attempts=attempts, retries=retries))
        return TryAgain("BIK answered 401", refresh_token=True)
    if status in (400, 413):
        error_type = PayloadTooLarge if status == 413 else BadRequest
        return GiveUp(error_type(error_message(answer.data, status), attempts=attempts, retries=retries))
    if status >= 500 or status in _RETRYABLE_4XX:
        return TryAgain(f"BIK answered {status}", retry_after=parse_retry_after(answer.retry_after, now=now))
    message = f"BIK answered {status}; check BIK_API_URL and the BIK account"
    return GiveUp(UnexpectedStatus(message, status=status, attempts=attempts, retries=retries))


def out_of_budget(
    *, attempts: int, max_attempts: int, starts_at: float, min_try_s: float, deadline: float, problem: str
) -> RetryableFailure | None:
    """Why no further try may start (at ``starts_at``, a clock value), or None when one may."""
    if attempts >= max_attempts:
        return RetryableFailure(
            f"gave up after {attempts} attempts: {problem}", attempts=attempts, retries=attempts - 1
        )
    if starts_at + min_try_s > deadline:
        return RetryableFailure(
            f"time budget exhausted after {attempts} attempts: {problem}",
            attempts=attempts,
            retries=max(attempts - 1, 0),
        )
    return None


# -- the client --------------------------------------------------------------------------------------


class BikClient:
    def __init__(
        self,
        api_url: str,
        token_provider: TokenProvider,
        *,
        http: urllib3.PoolManager | None = None,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 30.0,
        allow_http: bool = False,
        max_pool: int = 16,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        max_attempts: int = 8,
        backoff_base_s: float = 0.25,
        backoff_cap_s: float = 20.0,
        min_try_s: float = 0.5,
        app_id: str = "",
    ) -> None:
        check_api_url(api_url, allow_http=allow_http)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api_url = api_url
        self.app_id = app_id  # sent as ``appId`` in the bodies this client builds
        self._token_provider = token_provider
        self._http = http if http is not None else make_pool(max_pool)
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._wall_clock = wall_clock
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._min_try_s = min_try_s
        self._auth_lock = threading.Lock()
        self._rng_lock = threading.Lock()

    def upsert(
        self, records: Sequence[Mapping[str, Any]], *, deadline: float, body: bytes | None = None
    ) -> BatchResult:
        """POST these records as one batch; retry what is worth retrying until ``deadline`` (a clock() value).

        ``body`` is the request body already encoded by the caller (``encode_body(records, app_id)``),
        to save encoding the records twice; it is built here (with this client's ``app_id``) when not given.

        Raises BadRequest (400/413: the caller splits the batch), AuthFailed (401 twice, the second
        time with a freshly fetched token), RetryableFailure (attempts or time budget exhausted) or
        UnexpectedStatus (anything else). Every exception carries ``attempts`` and ``retries``.
        """
        try:
            result = self._upsert(
                body if body is not None else encode_body(records, self.app_id), records, deadline
            )
        except BikError as exc:  # every one says how many requests it took
            _count_retries(exc.retries)
            raise
        _count_retries(result.retries)
        return result

    def _upsert(self, body: bytes, records: Sequence[Mapping[str, Any]], deadline: float) -> BatchResult:
        token = self._token_provider(False)
        refreshed = False
        attempts = 0
        problem = "no time left to send"
        delay = 0.0
        while True:
            exhausted = out_of_budget(
                attempts=attempts,
                max_attempts=self._max_attempts,
                starts_at=self._clock() + delay,
                min_try_s=self._min_try_s,
                deadline=deadline,
                problem=problem,
            )
            if exhausted is not None:
                raise exhausted
            if delay > 0:
                self._sleep(delay)
            attempts += 1
            answer = self._post(body, token, deadline)
            step = interpret(
                answer, records, attempts=attempts, token_refreshed=refreshed, now=self._wall_clock()
            )
            if isinstance(step, Landed):
                verdict = step.verdict
                return BatchResult(
                    verdict.created,
                    verdict.updated,
                    verdict.rejected,
                    attempts,
                    attempts - 1,
                    verdict.unmatched,
                )
            if isinstance(step, GiveUp):
                if isinstance(step.error, AuthFailed):
                    _report_auth_failure(attempts)
                raise step.error
            problem = step.problem
            if step.refresh_token:
                refreshed = True
                token = self._fresh_token(stale=token)
                logger.info("BIK answered 401; fetched the token again", attempt=attempts)
                delay = 0.0
                continue
            delay = self._backoff(attempts, retry_after=step.retry_after)
            logger.info(
                "BIK call will be retried",
                attempt=attempts,
                status=answer.status,
                problem=problem,
                delay_s=round(delay, 3),
            )

    def _post(self, body: bytes, token: str, deadline: float) -> Answer:
        """One request, its timeouts cut to the time left; a transport error becomes an Answer too."""
        remaining = deadline - self._clock()
        timeout = urllib3.Timeout(
            connect=min(self._connect_timeout_s, remaining),
            read=min(self._read_timeout_s, remaining),
            total=remaining,
        )
        started = self._clock()
        try:
            response = self._http.request(
                "POST",
                self.api_url,
                body=body,
                headers={
                    "Authorization": f"Basic {token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                timeout=timeout,
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Answer(None, transport_error=type(exc).__name__)
        finally:
            latency_ms = (self._clock() - started) * 1000.0
            add_metric("ApiLatency", latency_ms, MetricUnit.Milliseconds)
        return Answer(response.status, response.data, response.headers.get("Retry-After"))

    def _fresh_token(self, *, stale: str) -> str:
        # Several threads see the same rotation at once: the first refetches, the others pick up its token.
        with self._auth_lock:
            current = self._token_provider(False)
            if current != stale:
                return current
            return self._token_provider(True)

    def _backoff(self, attempts: int, *, retry_after: float | None) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**n)); never earlier than ``Retry-After``."""
        ceiling = min(self._backoff_cap_s, self._backoff_base_s * (2 ** (attempts - 1)))
        with self._rng_lock:
            jittered = self._rng.uniform(0.0, ceiling)
        if retry_after is None:
            return jittered
        return max(retry_after, jittered)


def _report_auth_failure(attempt: int) -> None:
    add_metric("AuthFailures", 1, MetricUnit.Count)
    logger.error(
        "BIK refused the token even after fetching it again; check the BIK secret",
        status=401,
        attempt=attempt,
    )


# -- the pool and the URL policy ----------------------------------------------------------------------


def make_pool(max_pool: int = 16) -> urllib3.PoolManager:
    """A keep-alive pool that verifies TLS (certifi's CAs where installed, else the system store).

    ``maxsize`` should be at least the number of requests in flight, or connections are not reused.
    """
    ca_certs: str | None
    try:
        import certifi  # optional: the Lambda runtime may not ship it

        ca_certs = certifi.where()
    except ImportError:
        ca_certs = None
    return urllib3.PoolManager(
        num_pools=4,
        maxsize=max_pool,
        block=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs,
        retries=False,
    )


def _count_retries(retries: int) -> None:
    if retries > 0:
        add_metric("Retries", retries, MetricUnit.Count)
