"""Ingest's reading of one part of a file: the first pass that finds rows of one person, and the
row loop that sends valid records and writes rejects until the end, damage or the time left."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from bik_sync.checkpoint import skip_rows
from bik_sync.clock import Deadline
from bik_sync.duplicates import DuplicateMerger
from bik_sync.outcome import ReasonTally
from bik_sync.records import (
    ReadOptions,
    RecordFile,
    RejectsWriter,
    ResumePoint,
    UnreadableFile,
    open_records,
)
from bik_sync.records.errors import ReadingStopped
from bik_sync.sending import BatchSender, Lease

_TIME_CHECK_EVERY = 1000


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
    reopen: Callable[[], BinaryIO],
    name: str,
    options: ReadOptions,
    lease: Lease,
    reading_until: Deadline,
) -> tuple[DuplicateMerger, BinaryIO, RecordFile]:
    """Pass 1 over the file, then the object opened again for pass 2 (a RecordFile is read once)."""

    def keep_going() -> bool:
        lease.keep_alive()
        return not reading_until.expired()

    def on_read() -> None:  # also while lines that are no rows are read
        if not keep_going():
            raise ReadingStopped

    record_file.on_read(on_read)
    merger = DuplicateMerger.from_rows(record_file, keep_going=keep_going)
    second = reopen()
    try:
        return merger, second, open_records(second, name, options)
    except UnreadableFile:
        second.close()
        raise


def read_rows(
    record_file: RecordFile,
    rejects: RejectsWriter,
    reasons: ReasonTally,
    sender: BatchSender,
    merger: DuplicateMerger,
    lease: Lease,
    reading_until: Deadline,
    *,
    skip: int = 0,
    must_progress: bool = False,
) -> PartRead:
    """Every row past the first ``skip`` (read by earlier parts) to the sender or the rejects, until
    the end, damage, or time running out. With ``must_progress`` (a part after the first) the
    clock stops reading only at a thousandth row, so each part reads at least 999 rows."""
    rows = 0
    rows_at_last_piece = -1

    def on_read() -> None:
        # As each piece of the file is read: the row loop below looks at the clock every thousand
        # rows, and this catches a file whose pieces hold no rows (a gzip of blank lines).
        nonlocal rows_at_last_piece
        lease.keep_alive()
        if rows == rows_at_last_piece and reading_until.expired() and not must_progress:
            raise ReadingStopped
        rows_at_last_piece = rows

    record_file.on_read(on_read)
    # Most files hold no person twice: then every record goes straight to the sender.
    merge = merger.feed if len(merger.groups.rows) else None
    try:
        file_rows = skip_rows(iter(record_file), skip, lease.keep_alive)
        for row in file_rows:
            rows += 1
            if row.record is None:
                rejects.write(row)
                reasons.add(row.errors)
            elif merge is None:
                sender.add(row.number, row.record)
            else:
                for number, record in merge(row.number, row.record):
                    sender.add(number, record)
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
