"""deliver(): batching, concurrency, bisecting 400s and accounting, against in-process fakes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bik_sync.batching import BatchPacker
from bik_sync.bik import (
    AuthFailed,
    BadRequest,
    RetryableFailure,
    UnexpectedStatus,
    encode_body,
)
from bik_sync.bik.client import BikClient
from bik_sync.bik.responses import BatchResult
from bik_sync.delivery import DeliveryOutcome, DeliveryProgress, _Planner, deliver

URL = "https://bik.example/integrations/bikPlatformFunctions-createOrUpdateUserProperties"
POISON = "POISON"


class FakeBik(urllib3.PoolManager):
    """A tiny in-process BIK: 400 for a batch holding POISON, records without lastName echoed as invalid,
    the rest upserted by email. Thread-safe, like the real pool."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.store: dict[str, dict[str, Any]] = {}
        self.batches: list[int] = []
        self.bodies: list[int] = []

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        body: bytes = kwargs["body"]
        records = json.loads(body)["userProperties"]
        with self.lock:
            self.batches.append(len(records))
            self.bodies.append(len(body))
            if any(POISON in record.values() for record in records):
                return _reply(400, {"status": 400, "message": '"city" contains an invalid value'})
            invalid, created, updated = [], 0, 0
            for record in records:
                if "lastName" not in record:
                    invalid.append(
                        {**record, "storeId": "s", "customerId": None, "error": '"lastName" is required'}
                    )
                    continue
                created += record["email"] not in self.store
                updated += record["email"] in self.store
                self.store[record["email"]] = record
        return _reply(
            200,
            {
                "status": 200,
                "data": {
                    "invalidUserProperties": invalid,
                    "bulkUpsertUPResponse": {"createCount": created, "updateCount": updated},
                },
            },
        )


def _reply(status: int, payload: object) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=json.dumps(payload).encode(), status=status, preload_content=True)


def people(n: int) -> list[dict[str, Any]]:
    return [{"firstName": f"F{i}", "lastName": f"L{i}", "email": f"p{i}@example.com"} for i in range(n)]


def client_for(http: urllib3.PoolManager) -> BikClient:
    return BikClient(URL, lambda _: "tok", http=http, sleep=lambda _: None)


def far() -> float:
    return time.monotonic() + 60


def assert_each_index_once(outcome: DeliveryOutcome, n: int) -> None:
    indices = [i for i, _ in outcome.rejected] + [i for i, _ in outcome.failed]
    assert len(indices) == len(set(indices)), "an index was accounted twice"
    assert all(0 <= i < n for i in indices), "an index names no input record"
    assert outcome.accounted() == n


class ScriptedClient(BikClient):
    """Answers upsert() by a rule on the records, and measures how many calls run at once."""

    def __init__(self, answer: Any, hold_s: float = 0.0) -> None:
        super().__init__(URL, lambda _: "tok", http=FakeBik())
        self.answer = answer
        self.hold_s = hold_s
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def upsert(
        self, records: Sequence[Mapping[str, Any]], *, deadline: float, body: bytes | None = None
    ) -> BatchResult:
        if body is not None:
            assert body == encode_body(records), "deliver sent a body that is not these records"
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.hold_s)
            result: BatchResult = self.answer(records)
            return result
        finally:
            with self.lock:
                self.running -= 1


def all_created(records: Sequence[Mapping[str, Any]]) -> BatchResult:
    return BatchResult(len(records), 0, [], 1, 0)


# -- batching ---------------------------------------------------------------------------------------


def test_records_go_in_batches_of_at_most_batch_size_and_all_are_counted() -> None:
    # Given 250 valid records
    bik = FakeBik()

    # When they are delivered in batches of 100
    outcome = deliver(people(250), client_for(bik), batch_size=100, deadline=far())

    # Then three requests carried them and every one was created
    assert sorted(bik.batches) == [50, 100, 100]
    assert (outcome.created, outcome.updated, outcome.rejected, outcome.failed) == (250, 0, [], [])
    assert (outcome.requests, outcome.retries) == (3, 0)
    assert len(bik.store) == 250


def test_no_request_body_exceeds_the_byte_cap() -> None:
    # Given records of about 1 KB each and a 10 KB cap
    records = [{**p, "address1": "x" * 1000} for p in people(60)]
    bik = FakeBik()

    outcome = deliver(records, client_for(bik), batch_size=100, max_batch_bytes=10_000, deadline=far())

    assert max(bik.bodies) <= 10_000
    assert len(bik.batches) >= 6
    assert outcome.created == 60


@pytest.mark.parametrize("cap", [60, 200, 1_000, 5_000])
def test_planned_batches_keep_order_and_their_exact_encoded_size_within_the_cap(cap: int) -> None:
    records = [{"firstName": "x" * (i % 37), "lastName": "y", "email": f"{i}@e.io"} for i in range(200)]

    batches = planned(records, batch_size=25, max_batch_bytes=cap)

    assert [i for batch in batches for i in batch] == list(range(200))
    for batch in batches:
        assert len(batch) <= 25
        body = encode_body([records[i] for i in batch])
        assert len(body) <= cap or len(batch) == 1  # only a record too big on its own may exceed it


def test_a_record_too_big_for_the_cap_on_its_own_is_still_sent_alone() -> None:
    records = people(3)
    records[1]["address1"] = "x" * 5000
    bik = FakeBik()

    outcome = deliver(records, client_for(bik), max_batch_bytes=2_000, deadline=far())

    assert bik.batches == [1, 1, 1]
    assert outcome.created == 3


def test_no_records_means_no_requests() -> None:
    bik = FakeBik()

    outcome = deliver([], client_for(bik), deadline=far())

    assert outcome == DeliveryOutcome()
    assert bik.batches == []


def test_a_record_that_cannot_be_encoded_as_json_is_rejected_and_the_rest_go_in() -> None:
    records: list[dict[str, Any]] = people(3)
    records[1]["tags"] = {object()}

    outcome = deliver(records, client_for(FakeBik()), deadline=far())

    assert outcome.created == 2
    assert outcome.rejected == [(1, "record cannot be sent as JSON (TypeError)")]


# -- concurrency ------------------------------------------------------------------------------------


def test_at_most_max_in_flight_batches_are_sent_at_once_and_that_many_are_reached() -> None:
    client = ScriptedClient(all_created, hold_s=0.1)

    outcome = deliver(people(2000), client, batch_size=100, max_in_flight=4, deadline=far())

    assert client.calls == 20
    assert client.peak == 4
    assert outcome.created == 2000


def test_one_in_flight_sends_one_batch_at_a_time_and_eight_send_eight_at_once() -> None:
    # Speed itself is measured by `make bench`; here, how many requests overlap.
    # Each request is held long enough that the eighth has surely started before the first ends.
    serial, parallel = ScriptedClient(all_created, 0.01), ScriptedClient(all_created, 0.2)

    deliver(people(1600), serial, max_in_flight=1, deadline=far())
    deliver(people(1600), parallel, max_in_flight=8, deadline=far())

    assert (serial.calls, serial.peak) == (16, 1)
    assert (parallel.calls, parallel.peak) == (16, 8)


def test_the_halves_of_a_refused_batch_are_sent_side_by_side() -> None:
    # Given one batch that BIK refuses whole (a poisoned record), and two requests allowed in flight
    def answer(records: Sequence[Mapping[str, Any]]) -> BatchResult:
        if len(records) == 100:
            raise BadRequest('"city" contains an invalid value', attempts=1, retries=0)
        return all_created(records)

    client = ScriptedClient(answer, hold_s=0.2)
    # When it is delivered
    outcome = deliver(people(100), client, max_in_flight=2, deadline=far())
    # Then both halves went out at once, not one after the other
    assert (client.calls, client.peak, outcome.created) == (3, 2, 100)


# -- 400s are bisected ------------------------------------------------------------------------------


def test_a_400_batch_is_bisected_until_the_bad_records_are_isolated_and_the_good_ones_go_in() -> None:
    # Given 100 records of which two carry a value BIK refuses the whole batch for
    records = people(100)
    records[17]["city"] = POISON
    records[80]["city"] = POISON
    bik = FakeBik()

    # When delivered as one batch
    outcome = deliver(records, client_for(bik), batch_size=100, deadline=far())

    # Then exactly the two are rejects with BIK's message and the other 98 are in BIK
    assert outcome.rejected == [
        (17, '"city" contains an invalid value'),
        (80, '"city" contains an invalid value'),
    ]
    assert outcome.created == 98
    assert len(bik.store) == 98
    assert outcome.failed == []
    # And bisecting cost about 2 * 2 * log2(100) requests, not 100
    assert outcome.requests == len(bik.batches) <= 30


def test_a_single_record_refused_with_a_400_is_a_reject() -> None:
    records = people(1)
    records[0]["city"] = POISON

    outcome = deliver(records, client_for(FakeBik()), deadline=far())

    assert outcome.rejected == [(0, '"city" contains an invalid value')]
    assert outcome.created == 0


# -- per-record results of a 200 --------------------------------------------------------------------


def test_invalid_records_in_a_200_are_rejects_at_their_input_index_across_batches() -> None:
    records = people(250)
    for i in (3, 149, 249):
        del records[i]["lastName"]

    outcome = deliver(records, client_for(FakeBik()), batch_size=100, deadline=far())

    assert outcome.rejected == [(i, '"lastName" is required') for i in (3, 149, 249)]
    assert outcome.created == 247


def test_an_unmatched_bik_reject_is_kept_without_an_index_and_not_counted_as_delivered() -> None:
    client = ScriptedClient(lambda records: BatchResult(len(records) - 1, 0, [], 1, 0, ["mystery"]))

    outcome = deliver(people(10), client, deadline=far())

    assert outcome.unmatched == ["mystery"]
    assert outcome.rejected == []
    assert outcome.created == 9
    assert outcome.accounted() == 10


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=6), batch_size=st.integers(1, 12))
def test_an_unmatched_bik_reject_is_never_blamed_on_a_record_through_delivery_and_progress(
    sizes: list[int], batch_size: int
) -> None:
    # Given BIK answering every batch with one entry that matches none of its records
    def answer(records: Sequence[Mapping[str, Any]]) -> BatchResult:
        return BatchResult(len(records) - 1, 0, [], 1, 0, [f"mystery of {len(records)}"])

    # When tries at parts of the records are delivered and folded into progress, as receives are
    progress, total, start = DeliveryProgress(), DeliveryOutcome(), 0
    for size in sizes:
        sent = list(range(start, start + size))
        start += size
        attempt = deliver(people(size), ScriptedClient(answer), batch_size=batch_size, deadline=far())
        progress, total = progress.after(sent, attempt)
        progress = DeliveryProgress.from_json(progress.to_json())

    # Then no record, the last of a batch least of all, carries an unmatched entry's reason
    assert total.rejected == [] and progress.rejected == ()
    batches = sum(-(-size // batch_size) for size in sizes)
    assert len(total.unmatched) == len(progress.unmatched) == batches
    assert total.created == start - batches
    assert total.accounted() == start


# -- failures ---------------------------------------------------------------------------------------


def test_a_batch_that_runs_out_of_retries_is_failed_record_by_record_and_the_others_go_in() -> None:
    # Given BIK keeps failing the batch that holds record 150
    def answer(records: Sequence[Mapping[str, Any]]) -> BatchResult:
        if any(r["email"] == "p150@example.com" for r in records):
            raise RetryableFailure("gave up after 8 attempts: BIK answered 503", attempts=8, retries=7)
        return all_created(records)

    outcome = deliver(people(300), ScriptedClient(answer), batch_size=100, deadline=far())

    assert outcome.failed == [(i, "gave up after 8 attempts: BIK answered 503") for i in range(100, 200)]
    assert outcome.created == 200
    assert (outcome.requests, outcome.retries) == (10, 7)


def test_an_unexpected_status_fails_the_records_for_a_later_retry() -> None:
    def answer(records: Sequence[Mapping[str, Any]]) -> BatchResult:
        raise UnexpectedStatus("BIK answered 404; check BIK_API_URL", status=404, attempts=1)

    outcome = deliver(people(5), ScriptedClient(answer), deadline=far())

    assert [i for i, _ in outcome.failed] == [0, 1, 2, 3, 4]
    assert outcome.created == 0


def test_an_auth_failure_fails_that_batch_and_the_unsent_ones_but_keeps_answers_received() -> None:
    # Given BIK accepting the first batch, then refusing the credentials for good
    calls = 0

    def answer(records: Sequence[Mapping[str, Any]]) -> BatchResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            return BatchResult(created=len(records), updated=0, rejected=[], attempts=1, retries=0)
        raise AuthFailed("BIK answered 401 with a freshly fetched token", attempts=2, retries=1)

    # When 500 records go one request at a time
    outcome = deliver(people(500), ScriptedClient(answer), deadline=far(), max_in_flight=1)

    # Then the accepted batch stays created and every other record is failed with the reason
    assert outcome.created == 100
    assert [i for i, _ in outcome.failed] == list(range(100, 500))
    assert all("401" in reason for _, reason in outcome.failed)
    # And with one request in flight, nothing is sent after the refusal: batches start only as others end
    assert calls == 2


def test_with_the_deadline_already_passed_nothing_is_sent_and_every_record_is_failed() -> None:
    bik = FakeBik()

    outcome = deliver(people(150), client_for(bik), deadline=time.monotonic() - 1)

    assert bik.batches == []
    assert [i for i, _ in outcome.failed] == list(range(150))
    assert all("time budget" in reason for _, reason in outcome.failed)


def test_a_bad_request_after_a_retry_counts_both_requests() -> None:
    def answer(records: Sequence[Mapping[str, Any]]) -> BatchResult:
        raise BadRequest("nope", attempts=2, retries=1)

    outcome = deliver(people(1), ScriptedClient(answer), deadline=far())

    assert (outcome.requests, outcome.retries) == (2, 1)
    assert outcome.rejected == [(0, "nope")]


# -- every index accounted exactly once, whatever happens ----------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(["ok", "ok", "ok", "poison", "invalid", "doomed"]), max_size=120),
    batch_size=st.integers(1, 40),
    in_flight=st.integers(1, 6),
)
def test_every_input_index_ends_in_exactly_one_outcome(
    kinds: list[str], batch_size: int, in_flight: int
) -> None:
    # Given a mix of good, poisoned, invalid and undeliverable records
    records = people(len(kinds))
    for record, kind in zip(records, kinds, strict=True):
        if kind == "poison":
            record["city"] = POISON
        elif kind == "invalid":
            del record["lastName"]
        elif kind == "doomed":
            record["source"] = "doomed"
    bik = FakeBik()
    real = client_for(bik)

    def answer(batch: Sequence[Mapping[str, Any]]) -> BatchResult:
        if any(r.get("source") == "doomed" for r in batch):
            raise RetryableFailure("gave up", attempts=1)
        return real.upsert(batch, deadline=far())

    # When they are delivered
    outcome = deliver(
        records, ScriptedClient(answer), batch_size=batch_size, max_in_flight=in_flight, deadline=far()
    )

    # Then every index is in exactly one place; poison and invalid records are rejects (or failed when
    # they shared a batch with an undeliverable one), good ones are never rejected, doomed ones always fail
    assert_each_index_once(outcome, len(records))
    rejected = {i for i, _ in outcome.rejected}
    failed = {i for i, _ in outcome.failed}
    assert {i for i, k in enumerate(kinds) if k in ("poison", "invalid")} <= rejected | failed
    assert not rejected & {i for i, k in enumerate(kinds) if k in ("ok", "doomed")}
    assert {i for i, k in enumerate(kinds) if k == "doomed"} <= failed
    assert set(bik.store) == {
        f"p{i}@example.com" for i, k in enumerate(kinds) if k == "ok" and i not in failed
    }
    assert outcome.delivered == len(bik.store)


# --- progress kept between receives ---------------------------------------------------------------


def test_a_fresh_progress_has_every_record_pending() -> None:
    assert DeliveryProgress().pending(4) == [0, 1, 2, 3]


def test_progress_settles_confirmed_and_refused_records_and_leaves_failed_ones_pending() -> None:
    # Given a first try at all 6 records: 3 confirmed, record 1 refused by BIK, records 2 and 5 failed
    first = DeliveryOutcome(created=2, updated=1, rejected=[(1, "bad city")], failed=[(2, "500"), (5, "500")])
    progress, total = DeliveryProgress().after([0, 1, 2, 3, 4, 5], first)
    # Then only the failed ones are still to send, and the outcome so far says so
    assert progress.pending(6) == [2, 5]
    assert (total.created, total.updated, total.rejected, total.failed) == (
        2,
        1,
        [(1, "bad city")],
        first.failed,
    )
    # When the second try sends just those two (indices 0 and 1 of that try): one goes in, one fails
    second = DeliveryOutcome(created=1, failed=[(1, "gave up after 4 attempts")])
    progress, total = progress.after([2, 5], second)
    # Then the outcome covers all six records once, by index into all of them
    assert progress.pending(6) == [5]
    assert (total.created, total.updated) == (3, 1)
    assert total.rejected == [(1, "bad city")]
    assert total.failed == [(5, "gave up after 4 attempts")]
    assert total.accounted() == 6


def test_progress_keeps_an_unmatched_bik_entry_and_settles_its_batch() -> None:
    # Given BIK reported an entry that matched none of the two records sent (it stands in for one)
    progress, total = DeliveryProgress().after([3, 7], DeliveryOutcome(created=1, unmatched=["odd"]))
    assert progress.settled == frozenset({3, 7})
    assert total.unmatched == ["odd"]
    assert total.rejected == []  # record 7, the last sent, is not blamed
    assert total.accounted() == 2


def test_progress_survives_its_json_form_with_settled_records_as_runs() -> None:
    progress = DeliveryProgress(
        settled=frozenset({0, 1, 2, 3, 7, 9, 10}),
        created=5,
        updated=1,
        rejected=((7, "bad"),),
        unmatched=("odd",),
    )
    text = progress.to_json()
    assert json.loads(text)["settled"] == [[0, 4], [7, 8], [9, 11]]
    assert DeliveryProgress.from_json(text) == progress


def test_progress_saved_with_an_unmatched_entry_as_index_minus_one_reads_it_as_unmatched() -> None:
    # Given progress written before unmatched entries had a field of their own
    saved = '{"settled":[[0,3]],"created":1,"updated":0,"rejected":[[-1,"odd"],[2,"bad"]]}'
    assert DeliveryProgress.from_json(saved) == DeliveryProgress(
        settled=frozenset({0, 1, 2}), created=1, rejected=((2, "bad"),), unmatched=("odd",)
    )


def test_progress_cuts_long_reasons_so_that_it_stays_a_small_item() -> None:
    text = DeliveryProgress(frozenset({0}), rejected=((0, "x" * 5000),)).to_json()
    assert len(DeliveryProgress.from_json(text).rejected[0][1]) == 300


@pytest.mark.parametrize("text", ["", "[]", '{"settled": 3}', '{"settled": [], "created": "x"}'])
def test_unreadable_progress_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="delivery progress is not readable"):
        DeliveryProgress.from_json(text)


def planned(records: list[dict[str, Any]], *, batch_size: int, max_batch_bytes: int) -> list[list[int]]:
    """The batches (record indices) delivery's planner cuts ``records`` into."""
    planner = _Planner(iter(records), BatchPacker(max_records=batch_size, max_bytes=max_batch_bytes))
    batches = []
    while (batch := planner.next_batch()) is not None:
        batches.append(batch.indices)
    return batches
