"""BikClient + deliver() over real HTTP against the BIK emulator, with each fault knob on and all at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bik_local.emulator import Emulator
from bik_sync.bik.client import BikClient
from bik_sync.delivery import DeliveryOutcome, deliver

pytestmark = pytest.mark.integration

POISON = "poison-pill"
# Long enough that a slow machine never turns a reply into a retry (exact counts are asserted); the
# tests with hangs use HANG_READ_TIMEOUT_S, so a hang costs little time.
READ_TIMEOUT_S = 5.0
HANG_READ_TIMEOUT_S = 0.5


EMULATOR_SEED = 20240601  # the conftest's emulator fixture uses it


class SecretCache:
    """Stands in for the Secrets Manager cache: serves its copy until asked to refetch."""

    def __init__(self, emulator: Emulator, value: str | None = None) -> None:
        self.emulator = emulator
        self.value = value if value is not None else emulator.token
        self.refetches = 0

    def __call__(self, force_refresh: bool) -> str:
        if force_refresh:
            self.refetches += 1
            self.value = self.emulator.token
        return self.value


def make_client(
    emulator: Emulator, tokens: SecretCache | None = None, read_timeout_s: float = READ_TIMEOUT_S
) -> BikClient:
    return BikClient(
        emulator.url,
        tokens or SecretCache(emulator),
        allow_http=True,
        connect_timeout_s=1.0,
        read_timeout_s=read_timeout_s,
        backoff_base_s=0.02,
        backoff_cap_s=0.5,
        max_attempts=6,
        min_try_s=0.1,
    )


def customers(n: int, *, invalid_every: int = 0, poison_every: int = 0) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for i in range(n):
        record: dict[str, Any] = {
            "firstName": f"First{i}",
            "lastName": f"Last{i}",
            "phoneNumber": f"+9198{i:08d}",
            "email": f"customer{i}@example.com",
            "tags": ["vip"] if i % 3 == 0 else [],
            "smsMarketingConsent": i % 2 == 0,
        }
        if invalid_every and i % invalid_every == 1:
            record["emil"] = record.pop("email")  # BIK refuses unknown keys record by record
        elif poison_every and i % poison_every == 2:
            record["city"] = POISON  # BIK refuses the whole batch holding it
        records.append(record)
    return records


def is_valid(record: Mapping[str, Any]) -> bool:
    return "emil" not in record and record.get("city") != POISON


def deliver_like_sqs(
    records: Sequence[Mapping[str, Any]], client: BikClient, *, rounds: int = 6, **kwargs: Any
) -> tuple[DeliveryOutcome, int]:
    """Deliver, then send what failed again (as SQS redelivers the message), mapping indices back."""
    total = DeliveryOutcome()
    todo = list(range(len(records)))
    used = 0
    for _ in range(rounds):
        if not todo:
            break
        used += 1
        outcome = deliver([records[i] for i in todo], client, deadline=time.monotonic() + 30, **kwargs)
        total.created += outcome.created
        total.updated += outcome.updated
        total.requests += outcome.requests
        total.retries += outcome.retries
        total.rejected += [(todo[i], reason) for i, reason in outcome.rejected]
        total.unmatched += outcome.unmatched
        todo = [todo[i] for i, _ in outcome.failed]
    total.failed = [(i, "still failing") for i in todo]
    return total, used


def assert_store_holds_exactly(emulator: Emulator, records: Sequence[Mapping[str, Any]]) -> None:
    stored = sorted(emulator.users(), key=lambda user: user["phoneNumber"])
    expected = sorted((dict(r) for r in records if is_valid(r)), key=lambda r: r["phoneNumber"])
    assert stored == expected


def assert_accounted_once(outcome: DeliveryOutcome, records: Sequence[Mapping[str, Any]]) -> None:
    rejected = [i for i, _ in outcome.rejected]
    assert len(rejected) == len(set(rejected))
    assert outcome.unmatched == []
    assert outcome.failed == []
    assert set(rejected) == {i for i, r in enumerate(records) if not is_valid(r)}
    assert outcome.accounted() == len(records)


# -- no faults --------------------------------------------------------------------------------------


def test_a_clean_run_puts_every_valid_record_in_bik_and_rejects_the_invalid_with_bik_messages(
    emulator: Emulator,
) -> None:
    # Given 450 records of which some carry an unknown key
    records = customers(450, invalid_every=50)

    # When delivered in batches of 100
    outcome = deliver(records, make_client(emulator), batch_size=100, deadline=time.monotonic() + 30)

    # Then five requests carried them, the invalid ones are rejects with BIK's message, the rest created
    assert outcome.requests == 5
    assert outcome.rejected == [(i, '"emil" is not allowed') for i in range(1, 450, 50)]
    assert outcome.created == 450 - 9
    assert_store_holds_exactly(emulator, records)


def test_sending_the_same_records_again_counts_updates_not_creates(emulator: Emulator) -> None:
    records = customers(120)
    client = make_client(emulator)
    deliver(records, client, deadline=time.monotonic() + 30)

    again = deliver(records, client, deadline=time.monotonic() + 30)

    assert (again.created, again.updated) == (0, 120)
    assert emulator.state()["users"] == 120


# -- one fault at a time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "fault"),
    [
        ({"error_rate": 0.3}, "error"),
        ({"throttle_rate": 0.3, "retry_after_s": 0.1}, "throttle"),
        ({"reset_rate": 0.3}, "reset"),
        ({"malformed_rate": 0.3}, "malformed"),
        ({"hang_rate": 0.15}, "hang"),
    ],
    ids=["errors", "throttling", "resets", "malformed", "hangs"],
)
def test_with_a_transient_fault_on_every_valid_record_still_lands_exactly_once(
    emulator: Emulator, knobs: dict[str, Any], fault: str
) -> None:
    # Given BIK misbehaves on a share of requests
    emulator.set_faults(**knobs)
    records = customers(1500, invalid_every=97)

    # When the records are delivered (and what fails is sent again, as SQS would)
    client = make_client(emulator, read_timeout_s=HANG_READ_TIMEOUT_S)
    outcome, _ = deliver_like_sqs(records, client, batch_size=50, max_in_flight=8)

    # Then the fault was really served, retried through, and every record accounted once
    assert emulator.state()["faults_served"][fault] > 0
    assert outcome.retries > 0
    assert_accounted_once(outcome, records)
    assert_store_holds_exactly(emulator, records)


def test_a_retry_after_from_a_429_is_waited_out(emulator: Emulator) -> None:
    # Given half the requests throttled with Retry-After 0.4 s: the seeded draws throttle the first
    # two requests and let the third through
    emulator.set_faults(throttle_rate=0.5, retry_after_s=0.4)
    client = make_client(emulator)
    started = time.monotonic()

    # When one batch is sent
    outcome = deliver(customers(10), client, deadline=time.monotonic() + 10)

    # Then it went in on the third try, no sooner than the two Retry-Afters allowed
    assert (outcome.created, outcome.requests) == (10, 3)
    assert emulator.state()["faults_served"]["throttle"] == 2
    assert time.monotonic() - started >= 0.8


def test_a_poisoned_batch_is_bisected_so_only_the_poisoned_records_are_rejected(emulator: Emulator) -> None:
    emulator.set_faults(poison_value=POISON)
    records = customers(600, poison_every=150, invalid_every=200)

    outcome = deliver(records, make_client(emulator), batch_size=100, deadline=time.monotonic() + 30)

    poisoned = [i for i, r in enumerate(records) if r.get("city") == POISON]
    assert poisoned and all(i in dict(outcome.rejected) for i in poisoned)
    assert all("contains an invalid value" in dict(outcome.rejected)[i] for i in poisoned)
    assert emulator.state()["faults_served"]["poison"] > len(poisoned)
    assert_accounted_once(outcome, records)
    assert_store_holds_exactly(emulator, records)


def test_latency_is_absorbed_by_sending_batches_concurrently(emulator: Emulator) -> None:
    # Given 300 ms per request, 16 batches and 8 in flight
    emulator.set_faults(latency_ms=300)

    outcome = deliver(customers(1600), make_client(emulator), max_in_flight=8, deadline=time.monotonic() + 30)

    # Then BIK saw 8 requests under way at once, never more (speed itself is `make bench`'s job)
    assert outcome.created == 1600
    state = emulator.state()
    assert (state["upsert_requests"], state["upsert_peak_in_flight"]) == (16, 8)


# -- token rotation ---------------------------------------------------------------------------------


def test_a_rotated_token_is_refetched_once_and_delivery_goes_on(emulator: Emulator) -> None:
    # Given the client holds the old token and BIK has rotated to a new one
    tokens = SecretCache(emulator)
    client = make_client(emulator, tokens)
    emulator.rotate_token("bmV3LWtleTpuZXctc2VjcmV0")

    # When records are delivered with 8 batches in flight
    outcome = deliver(customers(800), client, max_in_flight=8, deadline=time.monotonic() + 30)

    # Then all went in after refetching the secret (once per thread at most, usually once)
    assert outcome.created == 800
    assert 1 <= tokens.refetches <= 8
    assert emulator.state()["faults_served"]["unauthorized"] >= 1


def test_a_token_that_stays_wrong_after_a_refetch_fails_every_record(emulator: Emulator) -> None:
    # Given the secret store itself still holds a token BIK refuses
    emulator.rotate_token("bmV3LWtleTpuZXctc2VjcmV0")

    class StaleSecret(SecretCache):
        def __call__(self, force_refresh: bool) -> str:
            self.refetches += force_refresh
            return "b2xkOm9sZA=="

    tokens = StaleSecret(emulator)

    outcome = deliver(customers(300), make_client(emulator, tokens), deadline=time.monotonic() + 30)

    assert len(outcome.failed) == 300 and outcome.created == 0
    assert all("401" in reason for _, reason in outcome.failed)
    assert tokens.refetches >= 1
    assert emulator.state()["users"] == 0


# -- everything at once -----------------------------------------------------------------------------


def test_with_every_fault_at_once_the_store_holds_exactly_the_valid_records_and_each_row_is_accounted_once(
    emulator: Emulator,
) -> None:
    # Given >= 20% errors, 429s coming in bursts, resets, malformed 200s, hangs, poison and invalid rows
    emulator.set_faults(
        error_rate=0.2,
        throttle_rate=0.1,
        retry_after_s=0.05,
        reset_rate=0.05,
        malformed_rate=0.05,
        hang_rate=0.03,
        poison_value=POISON,
    )
    stop = threading.Event()

    def throttle_bursts() -> None:
        while not stop.wait(0.25):
            emulator.set_faults(throttle_rate=0.55)  # a burst: with 20% errors most requests fail
            if stop.wait(0.15):
                break
            emulator.set_faults(throttle_rate=0.1)

    bursts = threading.Thread(target=throttle_bursts, daemon=True)
    bursts.start()
    records = customers(4000, invalid_every=61, poison_every=487)
    try:
        # When the records are delivered, the failed ones again as SQS would redeliver them
        client = make_client(emulator, read_timeout_s=HANG_READ_TIMEOUT_S)
        outcome, _ = deliver_like_sqs(records, client, batch_size=100, max_in_flight=8)
    finally:
        stop.set()
        bursts.join()

    # Then each fault was served, and every row is accounted exactly once
    state = emulator.state()
    served = state["faults_served"]
    assert all(served[name] > 0 for name in ("error", "throttle", "hang", "reset", "malformed", "poison"))
    assert served["error"] + served["throttle"] >= 0.2 * state["upsert_requests"]
    assert_accounted_once(outcome, records)
    assert outcome.created + outcome.updated == sum(map(is_valid, records))
    # And the store holds exactly the valid records, whatever was retried
    assert_store_holds_exactly(emulator, records)
