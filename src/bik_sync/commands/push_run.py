"""One push: a local file through the record core and the delivery engine, journaled, into BIK.

The file is read by the same record core as the ingest Lambda, in windows of rows on a reader
thread; each window's valid records not yet settled go to :func:`bik_sync.delivery.deliver`, the
Lambdas' engine, whose ``on_settled`` puts every answer in the journal as it arrives. Invalid rows
and records BIK refused go to the rejects file (the input's shape, like the Lambda's), records left
undelivered to the failed file (JSON lines of API records, re-pushable), and the report has the
Lambda's fields. Every row read is counted once: ``rows == created + updated + rejected + failed``.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bik_sync.bik import BikClient
from bik_sync.commands.journal import Journal
from bik_sync.commands.outputs import Outputs
from bik_sync.commands.progress import Progress
from bik_sync.delivery import Settled, deliver
from bik_sync.outcome import job_status, summarise_reasons
from bik_sync.records import ReadOptions, RecordFile, Row, UnreadableFile, open_records

_WINDOW_BATCHES = 8  # batches per deliver() call, per request in flight
_NO_DEADLINE_S = 7 * 24 * 3600.0
AUTH_REFUSED = "BIK refused the credentials: check the API key and secret"


class PushCannotStart(Exception):
    """The file cannot be read at all; nothing was sent."""


@dataclass(frozen=True, slots=True)
class PushPlan:
    path: Path
    options: ReadOptions
    batch_size: int
    max_batch_bytes: int
    max_in_flight: int
    app_id: str = ""


@dataclass
class Tally:
    """What the run has counted so far (the progress display reads it)."""

    rows: int = 0
    invalid: int = 0
    created: int = 0
    updated: int = 0
    rejected_by_bik: int = 0
    failed: int = 0
    resumed: int = 0  # rows an earlier run settled
    sent_settled: int = 0  # rows this run got an answer for
    reasons: Counter[str] = field(default_factory=Counter)

    def fields(self, elapsed_s: float) -> dict[str, int | str]:
        rate = self.sent_settled / elapsed_s if elapsed_s > 0 else 0.0
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.invalid + self.rejected_by_bik,
            "failed": self.failed,
            "records/s": f"{rate:,.0f}",
        }


@dataclass(slots=True)
class _Window:
    rows: list[Row]
    bytes_start: int
    bytes_end: int
    error: str = ""  # reading stopped after these rows, and why


class _CountingReader:
    """The file as the record core reads it, counting bytes for the ETA."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.position = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self.position += len(data)
        return data


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_file(path: Path, options: ReadOptions) -> tuple[RecordFile, _CountingReader, BinaryIO]:
    """Raises PushCannotStart with the reason."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise PushCannotStart(f"cannot open {path}: {exc.strerror or exc}") from None
    reader = _CountingReader(handle)
    try:
        return open_records(reader, path.name, options), reader, handle  # type: ignore[arg-type]
    except UnreadableFile as exc:
        handle.close()
        raise PushCannotStart(f"{path}: {exc}") from None
    except OSError as exc:
        handle.close()
        raise PushCannotStart(f"cannot read {path}: {exc.strerror or exc}") from None


class PushRun:
    def __init__(
        self, plan: PushPlan, client: BikClient, journal: Journal, outputs: Outputs, progress: Progress
    ) -> None:
        self.plan = plan
        self.tally = Tally()
        self._client = client
        self._journal = journal
        self._outputs = outputs
        self._progress = progress
        self._started = time.monotonic()
        self._window_size = plan.max_in_flight * plan.batch_size * _WINDOW_BATCHES
        self._total_bytes = 1
        self.error = ""
        self.auth_failed = False
        self.last_row = 0

    def run(self, record_file: RecordFile, reader: _CountingReader) -> dict[str, Any]:
        """Push every row; returns the report (written by the caller)."""
        self._total_bytes = max(1, self.plan.path.stat().st_size)
        for window in _windows(record_file, reader, self._window_size):
            self._push_window(window)
            if window.error:
                self.error = window.error
            if self.auth_failed:
                if window.bytes_end < self._total_bytes:  # rows after this window were not read
                    self.error = f"stopped after row {window.rows[-1].number}: {AUTH_REFUSED}"
                break
        self._finish_counts()
        self._show(self._total_bytes)
        return self._report(record_file)

    def _push_window(self, window: _Window) -> None:
        if not window.rows:
            return
        first, last = window.rows[0].number, window.rows[-1].number
        self.last_row = last
        settled = self._journal.settled_between(first, last)
        earlier_rejects = self._journal.rejected_between(first, last)
        pending: list[Row] = []
        for row in window.rows:
            self.tally.rows += 1
            if row.record is None:
                self.tally.invalid += 1
                self.tally.reasons.update(row.errors)
                self._outputs.reject(row)
            elif row.number in earlier_rejects:
                self._outputs.reject(row, earlier_rejects[row.number])
                self.tally.reasons[earlier_rejects[row.number]] += 1
            elif row.number not in settled:
                pending.append(row)
        self.tally.resumed += len(settled)
        if pending:
            self._deliver(pending, window)
        self._show(window.bytes_end)

    def _deliver(self, pending: list[Row], window: _Window) -> None:
        records = [row.record or {} for row in pending]
        done = [0]

        def heard(event: Settled) -> None:
            self._heard(event, pending)
            done[0] += len(event.settled)
            share = done[0] / len(pending)
            self._show(window.bytes_start + int(share * (window.bytes_end - window.bytes_start)))

        plan = self.plan
        outcome = deliver(
            records,
            self._client,
            batch_size=plan.batch_size,
            max_batch_bytes=plan.max_batch_bytes,
            max_in_flight=plan.max_in_flight,
            deadline=time.monotonic() + _NO_DEADLINE_S,
            app_id=plan.app_id,
            on_settled=heard,
        )
        for index, reason in outcome.failed:
            self.tally.failed += 1
            self.tally.reasons[reason] += 1
            self._outputs.fail(pending[index], reason)
        self.auth_failed = self.auth_failed or bool(outcome.auth_failure)

    def _heard(self, event: Settled, pending: list[Row]) -> None:
        """One answer of BIK: into the journal first, then the rejects file and the counts."""
        rows = [pending[i].number for i in event.settled]
        rejected = [(pending[i].number, reason) for i, reason in event.rejected]
        self._journal.record(
            rows, created=event.created, updated=event.updated, rejected=rejected, unmatched=event.unmatched
        )
        for i, reason in event.rejected:
            self._outputs.reject(pending[i], reason)
            self.tally.reasons[reason] += 1
        self.tally.created += event.created
        self.tally.updated += event.updated
        self.tally.rejected_by_bik += len(event.rejected) + len(event.unmatched)
        self.tally.sent_settled += len(event.settled)

    def _finish_counts(self) -> None:
        """BIK's counts over every row read, this run's and earlier runs' (from the journal)."""
        last_row = self.last_row if self.error else None
        totals = self._journal.totals(up_to_row=last_row)
        rejected_in_journal = self._journal.rejected_between(0, self.last_row if self.error else 1 << 62)
        self.tally.created, self.tally.updated = totals.created, totals.updated
        self.tally.rejected_by_bik = len(rejected_in_journal) + len(totals.unmatched)
        for reason in totals.unmatched:
            self._outputs.reject_unmatched(reason)
            self.tally.reasons[reason] += 1

    def _show(self, position: int) -> None:
        fields = self.tally.fields(time.monotonic() - self._started)
        self._progress.update(min(position, self._total_bytes), fields, self._total_bytes)

    def _report(self, record_file: RecordFile) -> dict[str, Any]:
        tally = self.tally
        delivered = tally.created + tally.updated
        read_status = "incomplete" if self.error else "complete"
        report: dict[str, Any] = {
            "input": str(self.plan.path),
            "status": job_status(read_status=read_status, delivered=delivered, failed=tally.failed),
            "rows": tally.rows,
            "created": tally.created,
            "updated": tally.updated,
            "rejected": tally.invalid + tally.rejected_by_bik,
            "failed": tally.failed,
            "rejected_invalid": tally.invalid,
            "rejected_by_bik": tally.rejected_by_bik,
            "reasons": summarise_reasons(tally.reasons),
            "resumed_rows": tally.resumed,
            "format": record_file.format,
            "encoding": record_file.encoding,
            "delimiter": record_file.delimiter,
            "ignored_columns": list(record_file.ignored_columns),
            "notes": list(record_file.notes),
        }
        if self.error:
            report["error"] = self.error
        return report


def _windows(record_file: RecordFile, reader: _CountingReader, max_rows: int) -> Iterator[_Window]:
    """Windows of rows read ahead on a thread, so reading overlaps the requests in flight."""
    handoff: queue.Queue[_Window | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read() -> None:
        try:
            for window in _cut(record_file, reader, max_rows):
                while not stop.is_set():
                    try:
                        handoff.put(window, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            handoff.put(exc)

    thread = threading.Thread(target=read, name="push-reader", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _cut(record_file: RecordFile, reader: _CountingReader, max_rows: int) -> Iterator[_Window]:
    rows: list[Row] = []
    start = 0
    try:
        for row in record_file:
            rows.append(row)
            if len(rows) >= max_rows:
                yield _Window(rows, start, reader.position)
                rows, start = [], reader.position
    except UnreadableFile as exc:
        yield _Window(rows, start, reader.position, error=str(exc))
        return
    yield _Window(rows, start, reader.position)
