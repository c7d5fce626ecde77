"""The BIK API client: one POST of a batch of user properties, retried until it lands or the budget ends.

One :class:`urllib3.PoolManager` per client (keep-alive, TLS verified, thread-safe), so a worker
sends its batches concurrently over a handful of warm connections.

Retries are an explicit loop rather than :class:`urllib3.util.Retry`: Retry knows statuses and
``Retry-After`` but not the invocation's deadline (a try must never start when it cannot finish,
and a wait must never sleep past it), nor the token refresh on a 401, nor a 200 whose body is not
the JSON we expect. Doing those beside urllib3's loop would split one policy across two places.

Nothing here logs a token or a record: log lines carry status codes, attempt numbers and counts.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from aws_lambda_powertools.metrics import MetricUnit

from bik_sync.observability import add_metric, logger

TokenProvider = Callable[[bool], str]

# 408/425/429 and every 5xx are worth another try; 413 is split like a 400 by the caller.
_RETRYABLE_4XX = frozenset({408, 425, 429})
_IDENTITY_KEYS = ("partnerCustomerId", "phoneNumber", "email")
_NOT_A_FIELD = frozenset({"error", "storeId", "customerId"})
_MAX_MESSAGE_CHARS = 500


class BikError(Exception):
    """BIK did not take the batch. ``attempts``/``retries`` say how many requests it cost."""

    def __init__(self, message: str, *, attempts: int = 0, retries: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts
        self.retries = retries


class BadRequest(BikError):
    """BIK refused the whole batch (400): some record in it is invalid. The caller bisects."""


class PayloadTooLarge(BadRequest):
    """BIK refused the batch as too large (413); splitting it helps just as for a 400."""


class AuthFailed(BikError):
    """401 even with a freshly fetched token. The message should be retried later, not the batch."""


class RetryableFailure(BikError):
    """Retries exhausted or the time budget cannot fit another try; the batch may be sent again later."""


class UnexpectedStatus(BikError):
    """A status that neither a retry nor a split can fix (404, 403, 3xx...): a configuration problem."""

    def __init__(self, message: str, *, status: int, attempts: int = 0, retries: int = 0) -> None:
        super().__init__(message, attempts=attempts, retries=retries)
        self.status = status


@dataclass(slots=True)
class BatchResult:
    """What BIK did with one batch.

    ``created + updated + len(rejected) == len(records)`` always holds: BIK's counts are reconciled
    with the rejects (a shortfall, e.g. two rows of one person in a batch, counts as updated).
    ``rejected`` holds ``(index into the records sent, BIK's message)``; index -1 marks an entry BIK
    reported that could not be matched to a sent record (reported, never dropped).
    """

    created: int
    updated: int
    rejected: list[tuple[int, str]]
    attempts: int
    retries: int


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
    ) -> None:
        check_api_url(api_url, allow_http=allow_http)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api_url = api_url
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

        ``body`` is the request body already encoded by the caller (``encode_body(records)``), to
        save encoding the records twice; it is built here when not given.

        Raises BadRequest (400/413: the caller splits the batch), AuthFailed (401 twice, the second
        time with a freshly fetched token), RetryableFailure (attempts or time budget exhausted) or
        UnexpectedStatus (anything else). Every exception carries ``attempts`` and ``retries``.
        """
        attempts = [0]
        try:
            return self._upsert(
                body if body is not None else encode_body(records), records, deadline, attempts
            )
        finally:
            if attempts[0] > 1:
                self._add_metric("Retries", attempts[0] - 1)

    def _upsert(
        self, body: bytes, records: Sequence[Mapping[str, Any]], deadline: float, counter: list[int]
    ) -> BatchResult:
        token = self._token_provider(False)
        refreshed = False
        attempts = 0
        last_problem = "no time left to send"
        delay = 0.0
        while True:
            if attempts >= self._max_attempts:
                raise RetryableFailure(
                    f"gave up after {attempts} attempts: {last_problem}",
                    attempts=attempts,
                    retries=attempts - 1,
                )
            if self._clock() + delay + self._min_try_s > deadline:
                raise RetryableFailure(
                    f"time budget exhausted after {attempts} attempts: {last_problem}",
                    attempts=attempts,
                    retries=max(attempts - 1, 0),
                )
            if delay > 0:
                self._sleep(delay)
            attempts += 1
            counter[0] = attempts
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
                self._record_latency(started)
                last_problem = f"{type(exc).__name__} talking to BIK"
                delay = self._backoff(attempts, retry_after=None)
                self._log_retry(attempts, None, last_problem, delay)
                continue
            self._record_latency(started)
            status = response.status
            if status == 200:
                result = parse_success(response.data, records)
                if result is None:
                    # BIK may have stored the batch: a retry is safe (an upsert), it only counts updates.
                    last_problem = (
                        "BIK answered 200 with a body that is not the expected JSON"
                        " (the records may be stored; sending them again is safe)"
                    )
                    delay = self._backoff(attempts, retry_after=None)
                    self._log_retry(attempts, status, last_problem, delay)
                    continue
                created, updated, rejected = result
                return BatchResult(created, updated, rejected, attempts, attempts - 1)
            if status == 401:
                if refreshed:
                    self._add_metric("AuthFailures", 1)
                    logger.error(
                        "BIK refused the token even after fetching it again; check the BIK secret",
                        status=status,
                        attempt=attempts,
                    )
                    raise AuthFailed(
                        "BIK answered 401 with a freshly fetched token",
                        attempts=attempts,
                        retries=attempts - 1,
                    )
                refreshed = True
                token = self._fresh_token(stale=token)
                logger.info("BIK answered 401; fetched the token again", attempt=attempts)
                last_problem = "BIK answered 401"
                delay = 0.0
                continue
            if status in (400, 413):
                message = error_message(response.data, status)
                error_type = PayloadTooLarge if status == 413 else BadRequest
                raise error_type(message, attempts=attempts, retries=attempts - 1)
            if status >= 500 or status in _RETRYABLE_4XX:
                retry_after = self._retry_after(response.headers.get("Retry-After"))
                last_problem = f"BIK answered {status}"
                delay = self._backoff(attempts, retry_after=retry_after)
                self._log_retry(attempts, status, last_problem, delay)
                continue
            raise UnexpectedStatus(
                f"BIK answered {status}; check BIK_API_URL and the BIK account",
                status=status,
                attempts=attempts,
                retries=attempts - 1,
            )

    # -- internals ---------------------------------------------------------------------------------

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

    def _retry_after(self, raw: str | None) -> float | None:
        return parse_retry_after(raw, now=self._wall_clock())

    def _record_latency(self, started: float) -> None:
        self._add_metric("ApiLatency", (self._clock() - started) * 1000.0, MetricUnit.Milliseconds)

    @staticmethod
    def _add_metric(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
        add_metric(name, value, unit)

    @staticmethod
    def _log_retry(attempt: int, status: int | None, problem: str, delay: float) -> None:
        logger.info(
            "BIK call will be retried",
            attempt=attempt,
            status=status,
            problem=problem,
            delay_s=round(delay, 3),
        )


# -- pure helpers (unit-tested directly) -------------------------------------------------------------


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


def check_api_url(url: str, *, allow_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and allow_http and _is_loopback(parts.hostname):
        return
    raise ValueError(
        "the BIK API URL must use https (plain http only for a loopback host with allow_http), "
        f"got scheme {parts.scheme!r} host {parts.hostname!r}"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def encode_record(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


BODY_PREFIX = b'{"userProperties":['
BODY_SUFFIX = b"]}"


def encode_body(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The request body: prefix + the records joined by commas + suffix (so its size is computable)."""
    return BODY_PREFIX + b",".join(encode_record(r) for r in records) + BODY_SUFFIX


def parse_retry_after(raw: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def error_message(data: bytes, status: int) -> str:
    """BIK's own words for a refused batch (its JSON ``message``/``error``), else a short excerpt."""
    text = data.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("message", "error", "errors", "details"):
            if body.get(key):
                return _reason(body[key])[:_MAX_MESSAGE_CHARS]
    stripped = text.strip()
    return stripped[:_MAX_MESSAGE_CHARS] if stripped else f"BIK answered {status}"


def parse_success(
    data: bytes, records: Sequence[Mapping[str, Any]]
) -> tuple[int, int, list[tuple[int, str]]] | None:
    """(created, updated, rejected) from a 200 body, or None when the body is not BIK's success JSON."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") not in (200, "200", True):
        return None
    payload = body.get("data") or {}
    if not isinstance(payload, dict):
        return None
    invalid = payload.get("invalidUserProperties") or []
    bulk = payload.get("bulkUpsertUPResponse") or {}
    if not isinstance(invalid, list) or not isinstance(bulk, dict):
        return None
    failed_docs = bulk.get("docsFailedToUpdate") or []
    if not isinstance(failed_docs, list):
        failed_docs = [failed_docs]
    found = match_rejections(records, invalid, default_reason="rejected by BIK")
    found += match_rejections(
        records,
        failed_docs,
        default_reason="BIK could not update this record",
        claimed={index for index, _ in found if index >= 0},
    )
    rejected = _one_per_record(found, len(records))
    created = _count(bulk.get("createCount"))
    updated = _count(bulk.get("updateCount"))
    created, updated = _reconcile(len(records) - len(rejected), created, updated)
    return created, updated, rejected


def _one_per_record(found: list[tuple[int, str]], sent: int) -> list[tuple[int, str]]:
    """One reject per record (its reasons joined), and no more unmatched (-1) rejects than records left.

    Every reason BIK gave is kept in the text, so nothing is dropped, while the rejects never
    outnumber the records sent: each stands for exactly one of them.
    """
    reasons: dict[int, list[str]] = {}
    unplaced: list[str] = []
    for index, reason in found:
        if index >= 0:
            reasons.setdefault(index, []).append(reason)
        else:
            unplaced.append(reason)
    rejected = [(index, "; ".join(texts)) for index, texts in reasons.items()]
    room = sent - len(rejected)
    if unplaced and room > 0:
        kept = unplaced[:room]
        if len(unplaced) > room:
            kept[-1] = "; ".join(unplaced[room - 1 :])
        rejected += [(-1, reason) for reason in kept]
    elif unplaced and rejected:
        index, reason = rejected[-1]
        rejected[-1] = (index, "; ".join([reason, *unplaced]))
    elif unplaced:  # nothing was sent, yet BIK reported problems: keep them all
        rejected = [(-1, reason) for reason in unplaced]
    return rejected


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _reconcile(accepted: int, created: int, updated: int) -> tuple[int, int]:
    """Make created + updated equal the records BIK did not reject, so every record is counted once."""
    if created + updated == accepted:
        return created, updated
    logger.warning(
        "BIK's counts disagree with the records it accepted; reconciling",
        accepted=accepted,
        create_count=created,
        update_count=updated,
    )
    if created + updated < accepted:
        # e.g. two rows of the same person in one batch: one create, the other an update of it.
        return created, accepted - created
    created = min(created, accepted)
    return created, accepted - created


# -- matching BIK's echoed records back to the records sent ----------------------------------------


def match_rejections(
    records: Sequence[Mapping[str, Any]],
    entries: Sequence[object],
    *,
    default_reason: str,
    claimed: set[int] | None = None,
) -> list[tuple[int, str]]:
    """Map each entry BIK reported back to an index into ``records``, with its reason.

    First by normalised identity (partnerCustomerId, then phone digits, then email case-folded).
    Then by position: BIK echoes entries in the order they were sent, so an entry left over lies
    between the records its identity-matched neighbours point at. Within that window, when there
    are as many free records as leftover entries they pair up in order; otherwise each leftover
    takes the free record sharing the most field values with it. An entry that still cannot be
    placed is reported with index -1, never dropped. No record is matched twice.
    """
    if not entries:
        return []
    taken: set[int] = set(claimed or ())
    index = _identity_index(records)
    fields: list[Mapping[str, Any]] = []
    reasons: list[str] = []
    matched: list[int | None] = []
    repeats: dict[int, int] = {}  # entry position -> a record already rejected with the same identity
    for entry in entries:
        entry_fields, reason = _entry_fields(entry, default_reason)
        fields.append(entry_fields)
        reasons.append(reason)
        found, already = _match_identity(entry, entry_fields, index, taken)
        if found is not None:
            taken.add(found)
        elif already is not None:
            repeats[len(matched)] = already
        matched.append(found)

    windows: dict[tuple[int, int], list[int]] = {}
    for position, found in enumerate(matched):
        if found is None and position not in repeats:
            low = max((m for m in matched[:position] if m is not None), default=-1)
            high = min((m for m in matched[position + 1 :] if m is not None), default=len(records))
            if low >= high:  # BIK's order is not ours here: look everywhere
                low, high = -1, len(records)
            windows.setdefault((low, high), []).append(position)

    for (low, high), positions in windows.items():
        candidates = [i for i in range(low + 1, high) if i not in taken]
        if len(candidates) == len(positions):
            pairs = list(zip(positions, candidates, strict=True))
        else:
            pairs = []
            for position in positions:
                free = [i for i in candidates if i not in taken]
                scored = [(_similarity(fields[position], records[i]), i) for i in free]
                best = max((score for score, _ in scored), default=0)
                if best > 0:
                    choice = next(i for score, i in scored if score == best)
                    taken.add(choice)
                    pairs.append((position, choice))
        for position, choice in pairs:
            matched[position] = choice
            taken.add(choice)

    for position, again in repeats.items():
        matched[position] = again  # a second problem for one record: the caller merges the reasons
    return [(found if found is not None else -1, reasons[i]) for i, found in enumerate(matched)]


def _entry_fields(entry: object, default_reason: str) -> tuple[Mapping[str, Any], str]:
    if isinstance(entry, Mapping):
        reason = _reason(entry.get("error") or entry.get("message") or entry.get("reason") or default_reason)
        for nested in ("doc", "record", "userProperty"):
            inner = entry.get(nested)
            if isinstance(inner, Mapping):
                return {**inner, **{k: v for k, v in entry.items() if k != nested}}, reason
        return entry, reason
    return {}, default_reason


def _reason(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("message") or value.get("details")
        return _reason(inner) if inner else json.dumps(value, default=str)[:_MAX_MESSAGE_CHARS]
    if isinstance(value, list):
        return "; ".join(_reason(item) for item in value)
    return str(value)


def _norm(key: str, value: object) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    if not text:
        return None
    if key == "phoneNumber":
        digits = re.sub(r"\D", "", text)
        return digits[-10:] if digits else None
    return text.casefold()


def _identity_index(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[int]]]:
    index: dict[str, dict[str, list[int]]] = {key: {} for key in _IDENTITY_KEYS}
    for i, record in enumerate(records):
        for key in _IDENTITY_KEYS:
            value = _norm(key, record.get(key))
            if value is not None:
                index[key].setdefault(value, []).append(i)
    return index


def _match_identity(
    entry: object, fields: Mapping[str, Any], index: dict[str, dict[str, list[int]]], taken: set[int]
) -> tuple[int | None, int | None]:
    """(a free record with this identity, else None; a record already taken with it, else None)."""
    already: int | None = None
    for key in _IDENTITY_KEYS:
        raw = fields.get(key) if fields else entry  # a bare value: try it as every kind of identity
        if isinstance(raw, Mapping):
            continue
        value = _norm(key, raw)
        if value is None:
            continue
        for i in index[key].get(value, ()):
            if i not in taken:
                return i, None
            if already is None:
                already = i
    return None, already


def _similarity(echoed: Mapping[str, Any], sent: Mapping[str, Any]) -> int:
    score = 0
    for key, value in echoed.items():
        if key in _NOT_A_FIELD or key not in sent:
            continue
        a, b = _norm(key, value), _norm(key, sent[key])
        if a is not None and a == b:
            score += 1
    return score
