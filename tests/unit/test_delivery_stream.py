"""deliver_stream(): one run over records drawn one by one, a bounded few ahead of BIK's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from bik_sync.delivery import Settled, deliver_stream
from tests.unit.test_delivery import POISON, FakeBik, client_for, far, people
from tests.unit.test_delivery_settled import Refusing


class Drawn:
    """Records handed out one at a time, noting the most ever drawn ahead of the answers heard."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.drawn = 0
        self.heard = 0
        self.most_ahead = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in self.records:
            self.drawn += 1
            self.most_ahead = max(self.most_ahead, self.drawn - self.heard)
            yield record

    def listen(self, heard: list[Settled]) -> Any:
        def on_settled(event: Settled) -> None:
            heard.append(event)
            self.heard += len(event.settled) + len(event.failed)

        return on_settled


def test_a_stream_is_delivered_in_one_run_each_record_heard_once_with_few_drawn_ahead() -> None:
    # Given 2,000 records as a stream, one of them refused by BIK with a 400
    records = people(2_000)
    records[1_234]["city"] = POISON
    stream, heard = Drawn(records), list[Settled]()

    # When they are delivered 4 requests of 10 at a time
    outcome = deliver_stream(
        stream,
        client_for(FakeBik()),
        batch_size=10,
        max_in_flight=4,
        deadline=far(),
        on_settled=stream.listen(heard),
    )

    # Then every record was heard of once, the counts add up, and never more were drawn ahead of the
    # answers heard than the requests in flight, the answers in hand while the freed slots are
    # refilled, the batch planned ahead and the record opening the next
    assert sorted(i for event in heard for i in event.settled) == list(range(2_000))
    assert [i for event in heard for i, _ in event.rejected] == [1_234]
    assert (outcome.records, outcome.created, outcome.rejected, outcome.failed) == (2_000, 1_999, 1, 0)
    assert outcome.exhausted and not outcome.auth_failure
    assert stream.most_ahead <= (4 + 4 + 1) * 10 + 1


class RefusingAfter(FakeBik):
    """Answers the first ``good`` requests, then refuses the credentials (even fetched again)."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        with self.lock:
            self.good -= 1
            refuse = self.good < 0
        if refuse:
            return Refusing().request(method, url, **kwargs)
        return super().request(method, url, **kwargs)


def test_refused_credentials_stop_the_drawing_and_fail_only_what_was_drawn() -> None:
    # Given a stream of 1,000 records and a BIK that refuses the credentials after 5 answers
    stream, heard = Drawn(people(1_000)), list[Settled]()

    # When it is delivered 2 requests of 10 at a time
    outcome = deliver_stream(
        stream,
        client_for(RefusingAfter(5)),
        batch_size=10,
        max_in_flight=2,
        deadline=far(),
        on_settled=stream.listen(heard),
    )

    # Then the stream was left part way, and each record drawn was heard of once: settled or failed
    assert outcome.auth_failure and not outcome.exhausted
    assert outcome.records == stream.drawn < 1_000
    heard_of = [i for event in heard for i in event.settled] + [i for event in heard for i, _ in event.failed]
    assert sorted(heard_of) == list(range(outcome.records))
    assert outcome.created == 50 and outcome.failed == outcome.records - 50


@pytest.mark.parametrize(
    "stop",
    [KeyboardInterrupt(), OSError(5, "Input/output error")],
    ids=["ctrl-c", "read-error"],  # Ctrl-C at a laptop; a disk error, part way through the file
)
def test_a_stream_stopped_part_way_still_hears_the_answers_to_requests_already_out(
    stop: BaseException,
) -> None:
    # Given a stream stopped (Ctrl-C, or a file that cannot be read) as its 45th record is drawn
    def records() -> Iterator[dict[str, Any]]:
        for n, record in enumerate(people(100)):
            if n == 44:
                raise stop
            yield record

    heard: list[Settled] = []

    # When it is delivered 2 requests of 10 at a time
    with pytest.raises(type(stop)):
        deliver_stream(
            records(),
            client_for(FakeBik()),
            batch_size=10,
            max_in_flight=2,
            deadline=far(),
            on_settled=heard.append,
        )

    # Then every batch that went out was heard of (its records settled: journaled by push, so a
    # resumed push does not send them again), and nothing past the stop
    assert sorted(i for event in heard for i in event.settled) == list(range(40))
