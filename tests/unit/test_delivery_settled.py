"""deliver() tells a journal what each answer settled, and carries the store's appId in every body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import urllib3

from bik_sync.batching import BatchPacker
from bik_sync.bik import body_overhead, body_prefix, encode_body, encode_record
from bik_sync.delivery import Settled, deliver
from tests.unit.test_delivery import POISON, FakeBik, client_for, far, people


class Recording(FakeBik):
    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        with self.lock:
            self.raw.append(kwargs["body"])
        return super().request(method, url, **kwargs)


def test_with_an_app_id_every_body_carries_it_and_stays_within_the_byte_cap() -> None:
    # Given records that fill batches by bytes, and a store's application id
    records = people(60)
    cap = body_overhead("store-42") + 5 * len(encode_record(records[0])) + 4 + 10
    http = Recording()

    # When they are delivered with the app id
    outcome = deliver(
        records, client_for(http), batch_size=100, max_batch_bytes=cap, deadline=far(), app_id="store-42"
    )

    # Then every body opens with the appId, none is over the cap, and all records went in
    assert outcome.created == 60
    assert all(body.startswith(b'{"appId":"store-42","userProperties":[') for body in http.raw)
    assert max(len(body) for body in http.raw) <= cap
    assert all(json.loads(body)["appId"] == "store-42" for body in http.raw)


def test_the_packer_counts_the_app_id_so_a_full_batch_is_exactly_the_cap() -> None:
    # Given three records that exactly fill a cap that counts the appId prefix
    records = people(4)
    size = len(encode_record(records[0]))
    cap = body_overhead("A1") + 3 * size + 2
    packer = BatchPacker(max_records=10, max_bytes=cap, overhead=body_overhead("A1"))

    # When they are counted in, then the fourth opens a new batch and the body of three is the cap
    opened = [packer.add(len(encode_record(r))) for r in records]
    assert opened == [False, False, False, True]
    assert len(encode_body(records[:3], "A1")) == cap
    assert body_prefix("") == b'{"userProperties":['


def test_each_answer_is_heard_once_and_the_settled_records_add_up() -> None:
    # Given 25 records in batches of 5, one of them refused by BIK with a 400
    records = people(25)
    records[12]["city"] = POISON
    heard: list[Settled] = []

    # When they are delivered with a listener
    outcome = deliver(records, client_for(FakeBik()), batch_size=5, deadline=far(), on_settled=heard.append)

    # Then every record is settled in exactly one answer, and each answer accounts for what it settled
    settled = [i for event in heard for i in event.settled]
    assert sorted(settled) == list(range(25))
    for event in heard:
        assert event.created + event.updated + len(event.rejected) + len(event.unmatched) == len(
            event.settled
        )
        assert not event.failed
    assert [i for event in heard for i, _ in event.rejected] == [12]
    assert outcome.created == 24 and not outcome.auth_failure


class Refusing(FakeBik):
    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        return urllib3.HTTPResponse(body=b'{"message":"Unauthenticated"}', status=401, preload_content=True)


def test_refused_credentials_are_heard_as_failures_of_everything_and_flagged() -> None:
    # Given BIK refusing the token, even fetched again
    heard: list[Settled] = []

    # When 30 records are delivered, one request at a time
    outcome = deliver(
        people(30),
        client_for(Refusing()),
        batch_size=5,
        max_in_flight=1,
        deadline=far(),
        on_settled=heard.append,
    )

    # Then nothing is settled, all 30 are failed, and the outcome says the credentials were refused
    assert outcome.auth_failure
    assert not [i for event in heard for i in event.settled]
    assert sorted(i for event in heard for i, _ in event.failed) == list(range(30))


class Watched(list[dict[str, Any]]):
    """Records that note how many of them were read (to be encoded)."""

    read = 0

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            self.read = max(self.read, index + 1)
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self[index]


class FirstRequestWatcher(FakeBik):
    def __init__(self, records: Watched) -> None:
        super().__init__()
        self.records = records
        self.read_at_first: int | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        with self.lock:
            if self.read_at_first is None:
                self.read_at_first = self.records.read
        return super().request(method, url, **kwargs)


def test_the_first_request_leaves_before_the_later_records_are_encoded() -> None:
    # Given 1,000 records in batches of 10, one request at a time
    records = Watched(people(1_000))
    bik = FirstRequestWatcher(records)

    # When they are delivered
    outcome = deliver(records, client_for(bik), batch_size=10, max_in_flight=1, deadline=far())

    # Then the first request went with at most the first batch (and the record opening the next) encoded
    assert bik.read_at_first is not None and bik.read_at_first <= 11
    assert outcome.created == 1_000


def test_a_record_that_cannot_be_encoded_is_heard_of_once_as_settled_and_rejected() -> None:
    # Given 30 records in batches of 10, the 25th not encodable as JSON
    records = people(30)
    records[24]["tags"] = {object()}
    heard: list[Settled] = []

    # When they are delivered with a listener
    outcome = deliver(records, client_for(FakeBik()), batch_size=10, deadline=far(), on_settled=heard.append)

    # Then it is rejected, and heard of once, as settled (never sent); every other record is settled once
    reason = "record cannot be sent as JSON (TypeError)"
    assert outcome.rejected == [(24, reason)]
    assert [event.rejected for event in heard if event.rejected] == [((24, reason),)]
    assert sorted(i for event in heard for i in event.settled) == list(range(30))
