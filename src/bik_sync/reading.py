"""Ingest's reading of one part of a file: the first pass that finds rows of one person, and the
row loop that sends valid records and writes rejects until the end, damage or the time left."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from bik_sync.checkpoint import skip_rows
from bik_sync.clock import Deadline
from bik_sync.duplicates import DuplicateMerger, IdentityIndex, index_rows, until_refused
from bik_sync.outcome import ReasonTally
from bik_sync.records import ReadOptions, RecordFile, RejectsWriter, ResumePoint, Row, UnreadableFile
from bik_sync.records.errors import ReadingStopped, RefusedWhole
from bik_sync.records.formats import open_records
from bik_sync.sending import BatchSender, Lease
from bik_sync.spill import EncodedRow, Spill

_TIME_CHECK_EVERY = 1000


class RowSource(Protocol):
    """What pass 2 reads: the file again (a RecordFile), or pass 1's rows (a Spill)."""

    def __iter__(self) -> Iterator[Row | EncodedRow]: ...

    def on_read(self, callback: Callable[[], None]) -> None: ...

    def resume_point(self) -> ResumePoint | None: ...


@dataclass(frozen=True, slots=True)
class PartRead:
    """What one invocation read: its rows, why it stopped early (damage), and the row it stopped
    before when its time ran out (0 when it read to the end), with where that row starts in the
    object when the reader can say (a plain CSV or JSON-lines file)."""

    rows: int
    error: str
    stopped_before: int
    resume: ResumePoint | None = None


def find_duplicates(
    record_file: RecordFile,
    index: IdentityIndex,
    lease: Lease,
    reading_until: Deadline,
    *,
    skip: int = 0,
    must_progress: bool = False,
    spill: Spill | None = None,
) -> tuple[int, bool]:
    """Pass 1 over the rows past the first ``skip`` (those earlier parts' pass 1 read), until the end
    or the time left: the rows pass 1 has read in all, and whether it reached the end. As the row
    loop does, it stops at a thousandth row, or at a piece of the file that holds no row once the time
    is up; with ``must_progress`` (a part after the first) only at a thousandth row. With ``spill``
    (reading from the first row), every row read is kept there for pass 2."""
    read = 0
    read_at_last_piece = -1

    def keep_going() -> bool:
        lease.keep_alive()
        return not reading_until.expired()

    def on_read() -> None:  # also while lines that are no rows are read
        nonlocal read_at_last_piece
        lease.keep_alive()
        if not must_progress and read == read_at_last_piece and reading_until.expired():
            raise ReadingStopped
        read_at_last_piece = read

    refused: list[RefusedWhole] = []

    def counted(rows: Iterator[Row]) -> Iterator[Row]:
        nonlocal read
        # A refusal is not damage that keeps the rows before it: raised below, before pass 2.
        for row in until_refused(rows, refused):
            read += 1
            yield row

    record_file.on_read(on_read)
    file_rows = iter(record_file)
    if spill is not None:
        assert not skip, "a spill holds a file's rows from its first"
        file_rows = spill.keep(record_file, file_rows)
    try:
        rows = skip_rows(file_rows, skip, lease.keep_alive)
    except ReadingStopped:
        return skip, False
    except RefusedWhole:
        raise
    except UnreadableFile:  # where pass 1 read before: it met this end then
        return skip, True
    done, finished = index_rows(counted(rows), index, keep_going)
    if refused:
        raise refused[0]
    return skip + done, finished


def reopen_records(
    reopen: Callable[[], BinaryIO], name: str, options: ReadOptions
) -> tuple[BinaryIO, RecordFile]:
    """The object opened again for pass 2 (a RecordFile is read once)."""
    second = reopen()
    try:
        return second, open_records(second, name, options)
    except UnreadableFile:
        second.close()
        raise


def read_rows(
    record_file: RowSource,
    rejects: RejectsWriter,
    reasons: ReasonTally,
    sender: BatchSender,
    merger: DuplicateMerger,
    lease: Lease,
    reading_until: Deadline,
    *,
    skip: int = 0,
    must_progress: bool = False,
    limit: int = sys.maxsize,
) -> PartRead:
    """Every row past the first ``skip`` (read by earlier parts) to the sender or the rejects, until
    the end, damage, time running out, or ``limit`` rows (those pass 1 read, when it could not reach
    the end). With ``must_progress`` (a part after the first) the clock stops reading only at a
    thousandth row, so each part reads at least 999 rows."""
    rows = 0
    rows_at_last_piece = -1

    def on_read() -> None:
        # As each piece of the file is read: the row loop below looks at the clock every thousand
        # rows, and this catches a file whose pieces hold no rows (a gzip of blank lines).
        nonlocal rows_at_last_piece
        lease.keep_alive()
        if not must_progress and rows == rows_at_last_piece and reading_until.expired():
            raise ReadingStopped
        rows_at_last_piece = rows

    record_file.on_read(on_read)
    # Most files hold no person twice: then every record goes straight to the sender.
    merge = merger if len(merger.groups.rows) else None
    try:
        file_rows = skip_rows(iter(record_file), skip, lease.keep_alive)
        for row in file_rows:
            if rows == limit:
                return PartRead(rows, "", row.number)
            rows += 1
            _take(row, rejects, reasons, sender, merge)
            if (rows + 1) % _TIME_CHECK_EVERY == 0:  # before every thousandth row
                lease.keep_alive()
                if reading_until.expired():
                    # Where the next row starts, asked between rows; then that row, if there is one.
                    resume = record_file.resume_point()
                    following = next(file_rows, None)
                    if following is None:
                        break
                    return PartRead(rows, "", following.number, resume)
    except UnreadableFile as exc:
        # Rows read before the damage stay processed; the report says where reading stopped.
        return PartRead(rows, str(exc), 0)
    except ReadingStopped:
        return PartRead(rows, "", 2)  # before any row of this piece: never 0, which means "done"
    return PartRead(rows, "", 0)


def _take(
    row: Row | EncodedRow,
    rejects: RejectsWriter,
    reasons: ReasonTally,
    sender: BatchSender,
    merger: DuplicateMerger | None,
) -> None:
    """One row to the rejects, or its record to the sender (through the merger when the file holds
    rows of one person and this row is one of them)."""
    if isinstance(row, EncodedRow):  # a valid row as pass 1 kept it: spill.py
        if merger is None or merger.groups.group_of(row.number) is None:
            sender.add_encoded(row.number, row.body)
            return
        number, record = row.number, decode_record(row.body)
    elif row.record is None:
        rejects.write(row)
        reasons.add(row.errors)
        return
    else:
        number, record = row.number, row.record
    if merger is None:
        sender.add(number, record)
    else:
        for merged_row, merged in merger.feed(number, record):
            sender.add(merged_row, merged)


def decode_record(body: bytes) -> dict[str, Any]:
    """A record from :func:`encode_record`'s bytes: the same values (records hold no floats, and
    json reads an integer of any size back as it was)."""
    record: dict[str, Any] = json.loads(body)
    return record
