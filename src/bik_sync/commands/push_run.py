"""One push: a local file through the record core and the delivery engine, journaled, into BIK.

The file is read by the same record core as the ingest Lambda, in windows of rows on a reader
thread (a few read ahead); the valid records not yet settled stream through one run of
:func:`bik_sync.delivery.deliver_stream`, the Lambdas' engine, which keeps the requests in flight
busy from the first row to the last; its ``on_settled`` puts every answer in the journal as it
arrives. Memory holds the windows read ahead and the batches in flight, not the file. Invalid rows
and records BIK refused go to the rejects file (the input's shape, like the Lambda's), records left
undelivered to the failed file (JSON lines of API records, re-pushable), and the report has the
Lambda's fields. Every row read is counted once:
``rows == created + updated + rejected + failed + duplicates``.

Rows of one person are merged as ingest merges them (``duplicates.py``): a first pass
(:func:`find_people`) reads the whole file through the record core before anything is sent, and
finds the rows that share an identity; the push then sends each person's merged record once, at
their last row. Requests in flight side by side can land in any order: without this, BIK would end
with whichever of a person's rows arrived last. That first pass also refuses a file refused whole
(a JSON file with two lists of records) before any of it is sent, and takes the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bik_sync.bik.client import BikClient
from bik_sync.commands.journal import Journal
from bik_sync.commands.outputs import Outputs
from bik_sync.commands.progress import Progress
from bik_sync.delivery import Settled, deliver_stream
from bik_sync.duplicates import DuplicateMerger
from bik_sync.outcome import job_status, summarise_reasons
from bik_sync.records import ReadOptions, RecordFile, Row, UnreadableFile
from bik_sync.records.errors import RefusedWhole
from bik_sync.records.formats import open_records

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
    file_digest: str = ""  # the first pass's SHA-256 of the file: the push checks it read the same


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
    duplicates: int = 0  # rows merged into an earlier row of their person
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
    """The file as the record core reads it, counting bytes for the ETA and hashing them: the first
    pass's digest is the journal's key, the push's tells whether the file changed in between."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.position = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self.position += len(data)
        self.digest.update(data)
        return data

    def hexdigest(self) -> str:
        """The SHA-256 of the whole file: the bytes not read yet (after damage) are read for it."""
        while self.read(1 << 20):
            pass
        return self.digest.hexdigest()


def find_people(path: Path, options: ReadOptions, progress: Progress) -> tuple[DuplicateMerger, str]:
    """The first pass: the rows of one person in the file, and the file's SHA-256 (of every byte,
    also after damage that stops reading). Raises PushCannotStart for a file refused whole, or one
    that cannot be read at all."""
    total = max(1, path.stat().st_size)
    try:
        with path.open("rb") as handle:
            reader = _CountingReader(handle)
            record_file = open_records(reader, path.name, options)  # type: ignore[arg-type]
            read = 0

            def counted() -> Iterator[Row]:
                nonlocal read
                for row in record_file:
                    read += 1
                    yield row

            def shown() -> bool:  # before every thousandth row
                progress.update(min(reader.position, total), {"rows": read}, total)
                return True

            merger = DuplicateMerger.from_rows(counted(), keep_going=shown)
            digest = reader.hexdigest()
    except RefusedWhole as exc:
        raise PushCannotStart(f"{path}: {exc}; nothing was sent") from None
    except UnreadableFile as exc:
        raise PushCannotStart(f"{path}: {exc}") from None
    except OSError as exc:
        raise PushCannotStart(f"cannot read {path}: {exc.strerror or exc}") from None
    progress.update(total, {"rows": read, "people with several rows": merger.groups.count}, total)
    return merger, digest


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
        self,
        plan: PushPlan,
        client: BikClient,
        journal: Journal,
        outputs: Outputs,
        progress: Progress,
        merger: DuplicateMerger | None = None,
    ) -> None:
        """``merger``: the groups :func:`find_people` found (none: every row is its own person)."""
        self.plan = plan
        self._merger = merger if merger is not None and len(merger.groups.rows) else None
        self._held: dict[int, Row] = {}  # group -> its latest row read, while the group is open
        self._flushing: deque[Row] = deque()  # records of people left open at the end, not drawn yet
        self.tally = Tally()
        self._client = client
        self._journal = journal
        self._outputs = outputs
        self._progress = progress
        self._started = time.monotonic()
        self._window_size = plan.batch_size
        self._look_ahead = plan.max_in_flight  # windows read ahead of the batch being planned
        self._total_bytes = 1
        self._sent: dict[int, tuple[Row, int]] = {}  # the engine's index: the row, bytes read by then
        self._drawn = 0
        self._left_in_window = 0  # rows of the window being drawn from not yet looked at
        self._position = 0
        self.error = ""
        self.auth_failed = False
        self.last_row = 0

    def run(self, record_file: RecordFile, reader: _CountingReader) -> dict[str, Any]:
        """Push every row; returns the report (written by the caller)."""
        self._total_bytes = max(1, self.plan.path.stat().st_size)
        windows = _windows(record_file, reader, self._window_size, self._look_ahead)
        try:
            plan = self.plan
            outcome = deliver_stream(
                self._records(windows),
                self._client,
                on_settled=self._heard,
                batch_size=plan.batch_size,
                max_batch_bytes=plan.max_batch_bytes,
                max_in_flight=plan.max_in_flight,
                deadline=time.monotonic() + _NO_DEADLINE_S,
                app_id=plan.app_id,
            )
            self.auth_failed = bool(outcome.auth_failure)
            if self.auth_failed and self._rows_left(windows):
                self.error = f"stopped after row {self.last_row}: {AUTH_REFUSED}"
        finally:
            windows.close()
        if plan.file_digest and not self.auth_failed and reader.hexdigest() != plan.file_digest:
            # What the first pass found (one person's rows) was of other bytes: say so, and the
            # next push, seeing a file of its own, starts over.
            changed = (
                "the file changed while it was pushed: the rows were read as it was then; push it "
                "again to send it as it is now"
            )
            self.error = f"{self.error}; {changed}" if self.error else changed
        if self._merger is not None:
            self._unsent_people(AUTH_REFUSED if self.auth_failed else "reading stopped before their last row")
            self.tally.duplicates = self._merger.duplicates
        self._finish_counts()
        self._show(self._total_bytes)
        return self._report(record_file)

    def _records(self, windows: Iterator[_Window]) -> Iterator[Mapping[str, Any]]:
        """The records to send, row by row as the engine draws them; every other row is settled here
        (invalid, or settled by an earlier run). Rows are counted as they are looked at."""
        for window in windows:
            if window.rows:
                yield from self._window_records(window)
            if window.error:
                self.error = window.error
        if self._merger is not None:
            # People whose last row the first pass saw but this one did not (the file changed while
            # it was pushed): their merged record goes at the latest of their rows read.
            self._flushing.extend(self._flushed())
            while self._flushing:
                row = self._flushing.popleft()
                self._sent[self._drawn] = (row, self._total_bytes)
                self._drawn += 1
                yield row.record or {}

    def _window_records(self, window: _Window) -> Iterator[Mapping[str, Any]]:
        first, last = window.rows[0].number, window.rows[-1].number
        settled = self._journal.settled_between(first, last)
        earlier_rejects = self._journal.rejected_between(first, last)
        self._left_in_window = len(window.rows)
        sent = False
        for row in window.rows:
            self._left_in_window -= 1
            self.tally.rows += 1
            self.last_row = row.number
            if row.record is None:
                self.tally.invalid += 1
                self.tally.reasons.update(row.errors)
                self._outputs.reject(row)
                continue
            record: Mapping[str, Any] = row.record
            if self._merger is not None:
                merged = self._merged(row, row.record)
                if merged is None:
                    continue  # merged into this person's later row, which is sent
                row, record = merged, merged.record or record
            if row.number in settled:
                self.tally.resumed += 1  # BIK confirmed or refused it in an earlier run
            if row.number in earlier_rejects:
                self._outputs.reject(row, earlier_rejects[row.number])
                self.tally.reasons[earlier_rejects[row.number]] += 1
            elif row.number not in settled:
                self._sent[self._drawn] = (row, window.bytes_end)
                self._drawn += 1
                sent = True
                yield record
        if not sent:
            self._show(window.bytes_end)

    def _merged(self, row: Row, record: dict[str, Any]) -> Row | None:
        """The row as it is sent: its person's merged record at their last row, None before it."""
        merger = self._merger
        assert merger is not None
        sent = merger.feed(row.number, record)
        if sent and sent[0][1] is record:  # a row of no group: as it is
            return row
        group = merger.groups.group_of(row.number)
        assert group is not None, "only a row of a group is held or merged"
        if not sent:  # a row of a person whose last row is still ahead
            self._held[group] = row
            return None
        self._held.pop(group, None)  # the person's last row (its earlier ones may be gone: a changed file)
        return Row(row.number, row.source, sent[0][1], ())

    def _flushed(self) -> Iterator[Row]:
        """The merged records of the people still open, each at the latest of their rows read."""
        assert self._merger is not None
        sources = {row.number: row.source for row in self._held.values()}  # once: there may be millions
        self._held.clear()
        for number, record in self._merger.flush():
            yield Row(number, sources[number], record, ())

    def _unsent_people(self, reason: str) -> None:
        """The push stopped before some people's last row (BIK refused the credentials): their
        records merged so far were never sent. Each is failed, at the latest of their rows read
        (the failed file can be pushed again), so that every row read is still counted once."""
        for row in [*self._flushing, *self._flushed()]:  # those the engine did not draw, then the rest
            self._outputs.fail(row, reason)
            self.tally.failed += 1
            self.tally.reasons[reason] += 1

    def _rows_left(self, windows: Iterator[_Window]) -> bool:
        """Whether the file has rows the engine did not draw (it stopped: the credentials were refused)."""
        return self._left_in_window > 0 or bool(self._flushing) or any(window.rows for window in windows)

    def _heard(self, event: Settled) -> None:
        """One answer of BIK: into the journal first, then the rejects and failed files and the counts."""
        sent = self._sent
        rejected = [(sent[i][0], reason) for i, reason in event.rejected]
        failed = [(sent[i][0], reason) for i, reason in event.failed]
        rows = []
        for i in event.settled:
            row, position = sent.pop(i)
            rows.append(row.number)
            self._position = max(self._position, position)
        for i, _ in event.failed:
            self._position = max(self._position, sent.pop(i)[1])
        self._journal.record(
            rows,
            created=event.created,
            updated=event.updated,
            rejected=[(row.number, reason) for row, reason in rejected],
            unmatched=event.unmatched,
        )
        tally = self.tally
        for row, reason in rejected:
            self._outputs.reject(row, reason)
            tally.reasons[reason] += 1
        for row, reason in failed:
            self._outputs.fail(row, reason)
            tally.reasons[reason] += 1
        tally.failed += len(failed)
        tally.created += event.created
        tally.updated += event.updated
        tally.rejected_by_bik += len(event.rejected) + len(event.unmatched)
        tally.sent_settled += len(event.settled)
        self._show(self._position)

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
            "duplicates": tally.duplicates,
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


def _windows(
    record_file: RecordFile, reader: _CountingReader, max_rows: int, ahead: int
) -> Generator[_Window, None, None]:
    """Windows of rows read ahead (at most ``ahead``) on a thread, so reading overlaps the requests
    in flight."""
    handoff: queue.Queue[_Window | BaseException | None] = queue.Queue(maxsize=ahead)
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
