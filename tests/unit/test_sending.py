"""The work-message sender: SQS batches sent from a thread of their own, in order, a few at most
waiting, and a refused batch raised in the reading thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import pytest

from bik_sync.batching import BatchPacker
from bik_sync.messages import JobMeta
from bik_sync.ports import QueueEntry
from bik_sync.sending import SEND_THREADS, BatchSender
from tests.fakes import InMemoryWorkQueue

JOB = JobMeta(job_id="job-1", bucket="data", key="incoming/f.csv", batch=0, rows=())


def sender_over(queue: object, *, ahead: int = 3, threads: int = SEND_THREADS) -> BatchSender:
    """One record per work message, so that ten records fill one SQS batch."""
    return BatchSender(
        queue,  # type: ignore[arg-type]
        JOB,
        packer=BatchPacker(max_records=1, max_bytes=1_000_000),
        signing_key=lambda: b"unit-test-signing-key-of-32-bytes!",
        sleep=lambda seconds: None,
        ahead=ahead,
        threads=threads,
    )


def add_records(sender: BatchSender, count: int) -> None:
    for row in range(2, count + 2):
        sender.add(row, {"firstName": "A", "lastName": "B", "email": f"p{row}@example.in"})


def batch_numbers(bodies: Sequence[str]) -> list[int]:
    return [json.loads(body)["job"]["batch"] for body in bodies]


def sending_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bik-sync-sends"]


class ThreadRecordingQueue(InMemoryWorkQueue):
    def __init__(self, refuse: int = 0) -> None:
        super().__init__(refuse)
        self.threads: set[str] = set()

    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        self.threads.add(threading.current_thread().name)
        return super().send_batch(entries)


class GatedQueue(InMemoryWorkQueue):
    """Every send waits until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        self.gate.wait()
        return super().send_batch(entries)


class BrokenQueue:
    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        raise ConnectionError("the queue's endpoint is gone")


def test_batches_are_sent_in_order_by_a_thread_of_their_own_with_refused_entries_first() -> None:
    # Given a queue that refuses the first two entries it is given (a throttle), one send at a time
    queue = ThreadRecordingQueue(refuse=2)
    sender = sender_over(queue, threads=1)
    # When 35 records are added and flushed
    add_records(sender, 35)
    sender.flush()
    sender.close()
    # Then every work message arrives once, in order, the refused two sent again before the next batch
    assert batch_numbers(queue.bodies) == [*range(3, 11), 1, 2, *range(11, 36)]
    assert queue.sends == 5
    # And none was sent by the reading thread; the sending thread is gone once closed
    assert queue.threads == {"bik-sync-sends"}
    assert sending_threads() == []


def test_a_batch_refused_after_every_attempt_fails_the_flush_and_nothing_after_it_is_sent() -> None:
    # Given a queue that refuses everything, one send at a time
    queue = ThreadRecordingQueue(refuse=1_000_000)
    sender = sender_over(queue, threads=1)
    # When records for three SQS batches are added and flushed, then the reading thread gets the failure
    with pytest.raises(RuntimeError, match=r"work queue refused 10 batch message\(s\) after 3 attempts"):
        add_records(sender, 30)
        sender.flush()
    # And only the first SQS batch was tried (three attempts), and a second flush fails the same way
    assert queue.sends == 3
    with pytest.raises(RuntimeError, match="work queue refused"):
        sender.flush()
    sender.close()
    assert sending_threads() == []


def test_an_error_of_the_queue_client_is_raised_in_the_reading_thread() -> None:
    # Given a queue whose client fails
    sender = sender_over(BrokenQueue())
    # When one SQS batch is sent and flushed, then the client's own error reaches the caller
    add_records(sender, 5)
    with pytest.raises(ConnectionError, match="endpoint is gone"):
        sender.flush()
    sender.close()


def test_reading_goes_on_while_a_send_waits_but_only_so_many_batches_ahead() -> None:
    # Given a queue whose sends wait until they are let through, and two SQS batches allowed waiting
    queue = GatedQueue()
    sender = sender_over(queue, ahead=2)

    def read() -> None:
        add_records(sender, 500)
        sender.flush()

    reader = threading.Thread(target=read)
    # When 500 records (50 SQS batches) are added from another thread
    reader.start()
    give_up = time.monotonic() + 10
    bound = 10 * (SEND_THREADS + 2 + 1) + 1  # SQS batches in the sends, waiting, in hand; and one
    while sender.batches < bound and reader.is_alive() and time.monotonic() < give_up:
        time.sleep(0.01)
    reader.join(timeout=0.2)
    # Then reading went past the batches being sent, to the bound, and waits there: one batch in each
    # send, two waiting, one full in hand (with two sends, work message 51 is the one that found no room)
    assert reader.is_alive()
    assert sender.batches == bound
    assert queue.bodies == []
    # And once the sends go through, every message arrives, once
    queue.gate.set()
    reader.join(timeout=30)
    sender.close()
    assert sorted(batch_numbers(queue.bodies)) == list(range(1, 501))


class MeetingQueue(InMemoryWorkQueue):
    """The first sends wait until ``SEND_THREADS`` of them are under way together (or fail after 10 s)."""

    def __init__(self, refuse: int = 0) -> None:
        super().__init__(refuse)
        self.meeting = threading.Barrier(SEND_THREADS, timeout=10)
        self.met = False

    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        if not self.met:
            self.meeting.wait()
            self.met = True
        return super().send_batch(entries)


def test_several_sends_are_in_flight_at_once_and_every_batch_arrives_once() -> None:
    # Given a queue whose first sends go through only when SEND_THREADS of them are under way at once
    # (a sender that sent one at a time would break the barrier and fail the flush)
    assert SEND_THREADS >= 2
    queue = MeetingQueue(refuse=3)
    sender = sender_over(queue)
    # When SEND_THREADS x 5 SQS batches are added and flushed
    add_records(sender, SEND_THREADS * 50)
    sender.flush()
    sender.close()
    # Then every work message arrived once (the refused ones sent again), and no thread is left
    assert sorted(batch_numbers(queue.bodies)) == list(range(1, SEND_THREADS * 50 + 1))
    assert sending_threads() == []


def test_with_several_sends_a_refused_batch_still_fails_the_flush_and_sending_stops() -> None:
    # Given a queue that refuses everything, and SEND_THREADS sends at once
    queue = ThreadRecordingQueue(refuse=1_000_000)
    sender = sender_over(queue)
    # When records for ten SQS batches are added and flushed, then the reading thread gets the failure
    with pytest.raises(RuntimeError, match="work queue refused"):
        add_records(sender, 100)
        sender.flush()
    sender.close()
    # And at most the batches already in flight were tried (three attempts each), not all ten
    assert 3 <= queue.sends <= 3 * (SEND_THREADS + 1) and queue.bodies == []
    assert sending_threads() == []


def test_a_closed_sender_refuses_more_batches_rather_than_dropping_them() -> None:
    # Given a sender that sent 10 work messages and was closed
    queue = InMemoryWorkQueue()
    sender = sender_over(queue)
    add_records(sender, 10)
    sender.flush()
    sender.close()
    # When it is given 10 more and flushed, then the flush fails (it does not report them sent)
    add_records(sender, 10)
    with pytest.raises(RuntimeError, match="closed"):
        sender.flush()
    # And only the first 10 were ever sent, and no sending thread was left behind
    assert batch_numbers(queue.bodies) == list(range(1, 11))
    assert sending_threads() == []
