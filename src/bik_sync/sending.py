"""Ingest's side of the work queue: records packed into signed work messages, sent ten at a time;
and the lease on the job, renewed while the file is read."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from bik_sync.batching import BatchPacker
from bik_sync.messages import JobMeta, build_work_message, encode_record
from bik_sync.ports import Jobs, QueueEntry, WorkQueue

# SendMessageBatch takes at most 10 entries; keep a batch's total under SQS's classic 256 KiB.
_SQS_BATCH_ENTRIES = 10
_SQS_BATCH_BYTES = 250_000
_SEND_ATTEMPTS = 3


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


class BatchSender:
    """Groups valid records into work messages (the batching rule) and sends them in SQS batches."""

    def __init__(
        self,
        queue: WorkQueue,
        job: JobMeta,
        *,
        packer: BatchPacker,
        signing_key: Callable[[], bytes],
        sleep: Callable[[float], None] = time.sleep,
        sent: int = 0,
    ) -> None:
        self._queue = queue
        self._job = job
        self._packer = packer
        self._signing_key = signing_key
        self._sleep = sleep
        self._records: list[bytes] = []  # each record encoded once: its size, then the message
        self._rows: list[int] = []
        self._entries: list[QueueEntry] = []
        self._entries_bytes = 0
        self.batches = sent  # batches earlier parts of the file sent: numbers carry on from there

    def add(self, row: int, record: Mapping[str, Any]) -> None:
        encoded = encode_record(record)
        if self._packer.add(len(encoded)):
            self._close_batch()
        self._records.append(encoded)
        self._rows.append(row)

    def flush(self) -> None:
        if self._records:
            self._close_batch()
        self._send_entries()

    def _close_batch(self) -> None:
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
        entries = self._entries
        for attempt in range(_SEND_ATTEMPTS):
            if not entries:
                break
            if attempt:
                self._sleep(0.2 * 2**attempt)  # the queue throttled or failed some entries
            failed_ids = self._queue.send_batch(entries)
            entries = [e for e in entries if e.id in failed_ids]
        if entries:
            raise RuntimeError(
                f"work queue refused {len(entries)} batch message(s) after {_SEND_ATTEMPTS} attempts"
            )
        self._entries, self._entries_bytes = [], 0
