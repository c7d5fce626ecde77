"""Pass 1's rows kept on local disk for pass 2, so that a file goes through the record core once.

Nothing is sent before pass 1 has read the whole file (``duplicates.py``). Instead of reading and
building every row again for pass 2, pass 1 writes each row to a spill file as it goes by:

- a valid record as the very bytes its work message will hold (:func:`encode_record`), after its
  row number: pass 2 packs them as they are;
- any other row (a reject, or a record that does not encode) whole, pickled, so that pass 2 does
  with it exactly what it would have done with the row read again;
- the damage that stopped reading, as its message: pass 2 meets the same end;
- every thousandth row, where the file can be read on from (its ``ResumePoint``), kept in memory:
  pass 2 asks for it there, should its time run out.

The spill is an unnamed file in the temporary directory (the Lambda's ``/tmp``): unlinked as it is
made, it is reachable only through this process's handle and goes with it, on :meth:`Spill.close` or
when an invocation dies; no customer's data is left behind for a later invocation. It is bounded:
past ``max_bytes`` (by default half the space free when it opens) it stops and is deleted, and pass 2
reads the file again, as it did before.
Pure: no AWS, no network.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from bik_sync.bik.wire import encode_record
from bik_sync.records import RecordFile, ResumePoint, Row, UnreadableFile
from bik_sync.records.errors import RefusedWhole

#: Rows between two resume points: the row loop (reading.read_rows) asks before every thousandth.
RESUME_EVERY = 1000
_WRITE_BUFFER = 1 << 20
_ROW = b"r"  # a pickled Row
_DAMAGE = b"e"  # a pickled message: reading stopped there


class EncodedRow(NamedTuple):
    """A valid row as pass 1 left it: its number and its record's encoded bytes."""

    number: int
    body: bytes


class Spill:
    """The rows of one pass 1, on disk; iterating it gives them back once pass 1 has read them."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None) -> None:
        # Unnamed (unlinked at once): an invocation that dies leaves no customer's data behind in /tmp.
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
            prefix="bik-sync-spill-", dir=directory, buffering=_WRITE_BUFFER
        )
        self._out: IO[bytes] | None = self._file  # while pass 1 writes
        if max_bytes is None:
            disk = os.statvfs(directory or tempfile.gettempdir())
            max_bytes = disk.f_bavail * disk.f_frsize // 2
        self._max_bytes = max_bytes
        self._written = 0
        self._rows = 0
        self._resume: dict[int, ResumePoint | None] = {}  # rows read -> where the next one starts
        # rows read (every thousandth) -> how many ignored columns and notes the file had by then
        self._met: dict[int, tuple[int, int]] = {}
        self._read = 0  # rows pass 2 has read back
        self.complete = False  # pass 1 read to the end (or to damage), and all of it is here

    @property
    def usable(self) -> bool:
        """Whether pass 2 can read the rows from here: pass 1 ended, and nothing was left out."""
        return self.complete and self._out is None and not self._file.closed

    def keep(self, record_file: RecordFile, rows: Iterator[Row]) -> Iterator[Row]:
        """``rows`` (of ``record_file``, from its first row) as they are, each written here on the way;
        :attr:`complete` once they end, at their end or at damage. (One generator, the writing
        inline: this runs once a row.)"""
        encode, max_bytes = encode_record, self._max_bytes
        try:
            for row in rows:
                if self._out is not None:
                    self._rows += 1
                    line = b""
                    if row.record is not None:  # sent, whatever else the row says (reading._take)
                        try:  # noqa: SIM105 - suppress() costs a context manager a row
                            line = b"%d %b\n" % (row.number, encode(row.record))
                        except (TypeError, ValueError):  # what does not encode fails in pass 2, as before
                            pass
                    if not line:
                        line = _ROW + _pickled((row.number, row.source, row.record, row.errors))
                    self._written += len(line)
                    if self._written > max_bytes:
                        self.close()  # over its bound: given up, and pass 2 reads the file again
                    else:
                        self._out.write(line)
                        if not self._rows % RESUME_EVERY:  # the row pass 2 stops before, out of time
                            self._met[self._rows] = (len(record_file.ignored_columns), len(record_file.notes))
                yield row
                # Between two rows (the next one is asked for): where the file can be read on from.
                if self._out is not None and (self._rows + 1) % RESUME_EVERY == 0:
                    self._resume[self._rows] = record_file.resume_point()
        except RefusedWhole:  # none of the file is sent: pass 2 never starts
            raise
        except UnreadableFile as exc:
            self._end(_DAMAGE + _pickled(str(exc)))
            raise
        self._end(b"")

    def __iter__(self) -> Iterator[Row | EncodedRow]:
        """The rows pass 1 read, in its order; raises the damage it met, where it met it."""
        if not self.usable:
            raise RuntimeError("the spill is not complete: read the file again")
        self._file.seek(0)
        for read, line in enumerate(self._file, 1):
            self._read = read
            kind = line[:1]
            if kind == _ROW:
                yield Row(*_unpickled(line[1:]))
            elif kind == _DAMAGE:
                raise UnreadableFile(_unpickled(line[1:]))
            else:
                number, _, body = line.partition(b" ")
                yield EncodedRow(int(number), body[:-1])

    def resume_point(self) -> ResumePoint | None:
        """Where the file can be read on from after the last row it gave (ask between rows)."""
        return self._resume.get(self._read)

    def as_far_as_read(self, record_file: RecordFile) -> None:
        """``record_file`` (pass 1's, read to the end) cut back to the ignored columns and notes its
        rows had met up to the last row pass 2 read: a pass 2 that stopped before the end (its time
        was up, and no part follows) reports what reading the file again as far would have met."""
        if self._read in self._met:
            ignored, notes = self._met[self._read]
            del record_file.ignored_columns[ignored:], record_file.notes[notes:]

    def on_read(self, callback: Callable[[], None]) -> None:
        """A spill holds only rows: there is no piece of it without one to time out in."""

    def close(self) -> None:
        self._out = None
        self._file.close()

    def _end(self, last_line: bytes) -> None:
        """Pass 1 has read all it will: the spill is complete unless it was given up on the way."""
        if self._out is not None:
            self._out.write(last_line)
            self._out.flush()
            self._out = None
            self.complete = True


def _pickled(value: Any) -> bytes:
    """One line's worth: pickle can hold any byte, the line only what is not a newline. (Imported
    here: only rejects and damage need them, and a cold start pays for every import.)"""
    import base64
    import pickle

    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)) + b"\n"


def _unpickled(line: bytes) -> Any:
    import base64
    import pickle

    # Written by this process, to a file only it can read (mkstemp), during this invocation.
    return pickle.loads(base64.b64decode(line))  # noqa: S301
