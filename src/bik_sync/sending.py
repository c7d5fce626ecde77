"""Ingest's side of the work queue: records packed into signed work messages, sent ten at a time
by a thread of their own while reading goes on; and the lease on the job, renewed while the file is read."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bik_sync.batching import BatchPacker
from bik_sync.messages import JobMeta, build_work_message, encode_record
from bik_sync.ports import Jobs, QueueEntry, WorkQueue

# SendMessageBatch takes at most 10 entries; keep a batch's total under SQS's classic 256 KiB.
_SQS_BATCH_ENTRIES = 10
_SQS_BATCH_BYTES = 250_000
_SEND_ATTEMPTS = 3
# SQS batches packed and waiting while others are sent: reading never waits on a round trip unless
# sending falls this far behind, and at most (this + SEND_THREADS) x 250 KB of messages are held.
SENDS_AHEAD = 3
# SendMessageBatch calls in flight at once: SQS answers in ~10-30 ms, in which ingest reads ~1,000
# rows (8 work messages, one call), so one at a time would hold a fast read to the queue's pace.
SEND_THREADS = 3


class Lease:
    """Renews the ingest's lease on the job now and then (every third of it), while rows are read."""

    def __init__(self, jobs: Jobs, job_id: str, lease_s: float) -> None:
        self._jobs = jobs
        self._job_id = job_id
        self._lease_s = lease_s
        self._renewed = time.monotonic()

    def keep_alive(self) -> None:
        if time.monotonic() - self._renewed > self._lease_s / 3:
            self._jobs.renew(self._job_id, lease_s=self._lease_s)
            self._renewed = time.monotonic()


def send_entries(
    work_queue: WorkQueue, entries: Sequence[QueueEntry], sleep: Callable[[float], None]
) -> None:
    """One SendMessageBatch, the entries the queue refused sent again; raises when some are still
    refused after the attempts."""
    for attempt in range(_SEND_ATTEMPTS):
        if not entries:
            break
        if attempt:
            sleep(0.2 * 2**attempt)  # the queue throttled or failed some entries
        failed_ids = work_queue.send_batch(entries)
        entries = [e for e in entries if e.id in failed_ids]
    if entries:
        raise RuntimeError(
            f"work queue refused {len(entries)} batch message(s) after {_SEND_ATTEMPTS} attempts"
        )


class _Sends:
    """Threads (``threads`` of them) that send SQS batches as they are handed over, at most ``ahead``
    of them waiting: with several, one batch's round trip overlaps the next one's, so a fast read is
    not held to one SendMessageBatch at a time. Batches start in the order handed over and may land
    out of it, which changes nothing downstream: the queue keeps no order, and every work message
    carries its own batch number and rows. A send that fails stops the sending (batches not yet
    started are dropped; those already in flight land, as a retried ingest would send them again);
    the failure is raised in the reading thread by the next :meth:`hand_over`, :meth:`raise_failure`
    or :meth:`wait`."""

    def __init__(
        self, work_queue: WorkQueue, sleep: Callable[[float], None], ahead: int, threads: int = 1
    ) -> None:
        self._queue = work_queue
        self._sleep = sleep
        self._ready: queue.Queue[list[QueueEntry] | None] = queue.Queue(maxsize=max(1, ahead))
        self._count = max(1, threads)
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._dropping = False  # closed before flushing: what is still waiting is not sent

    def hand_over(self, entries: list[QueueEntry]) -> None:
        """Queue a batch for sending; waits while ``ahead`` batches are waiting already."""
        self.raise_failure()
        if self._dropping:
            raise RuntimeError("the sender is closed: it sends nothing more")
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, name="bik-sync-sends", daemon=True)
                for _ in range(self._count)
            ]
            for thread in self._threads:
                thread.start()
        self._ready.put(entries)

    def wait(self) -> None:
        """Until every batch handed over is sent; raises the first send's failure."""
        if self._threads:
            self._ready.join()
        self.raise_failure()

    def raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the threads; batches still waiting (reading failed before the flush) are dropped."""
        self._dropping = True
        for _ in self._threads:
            self._ready.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _run(self) -> None:
        while (entries := self._ready.get()) is not None:
            try:
                if self._error is None and not self._dropping:
                    send_entries(self._queue, entries, self._sleep)
            except BaseException as exc:  # noqa: BLE001 - not swallowed: raised in the reading thread
                if self._error is None:
                    self._error = exc
            finally:
                self._ready.task_done()
        self._ready.task_done()


class BatchSender:
    """Groups valid records into work messages (the batching rule) and sends them in SQS batches,
    from threads of their own (``threads`` sends in flight, at most ``ahead`` batches waiting for
    them). :meth:`flush` sends the rest and waits for every send; a send the queue refused after the
    attempts is raised by the next :meth:`add` that closes a message, or by :meth:`flush`.
    :meth:`close` stops the threads (``contextlib.closing``)."""

    def __init__(
        self,
        queue: WorkQueue,
        job: JobMeta,
        *,
        packer: BatchPacker,
        signing_key: Callable[[], bytes],
        sleep: Callable[[float], None] = time.sleep,
        sent: int = 0,
        ahead: int = SENDS_AHEAD,
        threads: int = SEND_THREADS,
    ) -> None:
        self._job = job
        self._packer = packer
        self._signing_key = signing_key
        self._sends = _Sends(queue, sleep, ahead, threads)
        self._records: list[bytes] = []  # each record encoded once: its size, then the message
        self._rows: list[int] = []
        self._entries: list[QueueEntry] = []
        self._entries_bytes = 0
        self.batches = sent  # batches earlier parts of the file sent: numbers carry on from there

    def add(self, row: int, record: Mapping[str, Any]) -> None:
        self.add_encoded(row, encode_record(record))

    def add_encoded(self, row: int, encoded: bytes) -> None:
        """A record already encoded (:func:`encode_record`'s bytes, kept by pass 1: spill.py)."""
        if self._packer.add(len(encoded)):
            self._close_batch()
        self._records.append(encoded)
        self._rows.append(row)

    def flush(self) -> None:
        if self._records:
            self._close_batch()
        self._send_entries()
        self._sends.wait()

    def close(self) -> None:
        self._sends.close()

    def _close_batch(self) -> None:
        self._sends.raise_failure()  # a batch the queue refused stops reading here, not at the end
        self.batches += 1
        meta = dataclasses.replace(self._job, batch=self.batches, rows=tuple(self._rows))
        body = build_work_message(self._records, meta, self._signing_key())
        if self._entries and (
            len(self._entries) >= _SQS_BATCH_ENTRIES or self._entries_bytes + len(body) > _SQS_BATCH_BYTES
        ):
            self._send_entries()
        self._entries.append(QueueEntry(id=str(self.batches), body=body))
        self._entries_bytes += len(body)
        self._records, self._rows = [], []

    def _send_entries(self) -> None:
        if self._entries:
            self._sends.hand_over(self._entries)
        self._entries, self._entries_bytes = [], 0
