"""What a reader gives back: the rows of a file, and the file as it was detected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a file as the user sees it, and what became of it."""

    number: int  # CSV: spreadsheet row (header = 1); JSON lines: line number; JSON array: 1-based index
    source: Any  # the original cells (CSV, guard apostrophes stripped) or the original JSON value
    record: dict[str, Any] | None  # the normalised API UserProperty when valid, else None
    errors: tuple[str, ...]  # API-style messages, one per problem; empty when valid


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a reader of a plain CSV or JSON-lines file can carry on without the file's start: the
    byte at which the next unread row starts, and what the reader decided from the rows before it."""

    offset: int  # the object's byte at which the next unread row starts (a row boundary)
    number: int  # the file's number of the last row read: the next row read is numbered on from it
    format: str  # "csv" | "jsonl"
    encoding: str  # as detected (and reported)
    codec: str  # what decodes the bytes from the offset on (no BOM there: "utf-16-le", not "utf-16")
    delimiter: str | None = None  # CSV
    columns: tuple[str, ...] = ()  # CSV: the header's cells
    date_order: str | None = None  # the slash-date order the file's first rows decided
    ignored: tuple[str, ...] = ()  # JSON lines: the keys that mapped to nothing so far

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "number": self.number,
            "format": self.format,
            "encoding": self.encoding,
            "codec": self.codec,
            "delimiter": self.delimiter,
            "columns": list(self.columns),
            "date_order": self.date_order,
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ResumePoint:
        delimiter, date_order = doc.get("delimiter"), doc.get("date_order")
        return cls(
            offset=int(doc["offset"]),
            number=int(doc["number"]),
            format=str(doc["format"]),
            encoding=str(doc["encoding"]),
            codec=str(doc["codec"]),
            delimiter=None if delimiter is None else str(delimiter),
            columns=tuple(str(c) for c in doc.get("columns", ())),
            date_order=None if date_order is None else str(date_order),
            ignored=tuple(str(k) for k in doc.get("ignored", ())),
        )


class RecordFile:
    """An opened file of records: what was detected, and its rows (iterate once)."""

    def __init__(
        self,
        *,
        format: str,
        encoding: str,
        delimiter: str | None,
        columns: list[str],
        ignored_columns: list[str],
        rows: Iterator[Row],
        notes: list[str] | None = None,
    ) -> None:
        self.format = format
        self.encoding = encoding
        self.delimiter = delimiter
        self.columns = columns
        self.ignored_columns = ignored_columns
        # What was read differently from the plain case, for the report (title rows skipped, the
        # members of a JSON object not read as records); a reader may add to it while it reads.
        self.notes: list[str] = [] if notes is None else notes
        self._rows: Iterator[Row] | None = rows
        self._source: Any = None  # the byte stream the rows are read from (streams.Peekable)
        self._resume: Callable[[], ResumePoint | None] | None = None

    def attach_source(self, source: Any) -> None:
        self._source = source

    def resumable(self, point: Callable[[], ResumePoint | None]) -> None:
        self._resume = point

    def resume_point(self) -> ResumePoint | None:
        """Where to carry on after the last row the iterator gave: ask only between rows (after
        one was given, before the next is asked for, never after the iterator raised). None for
        a file that cannot be read on from a byte offset (compressed, a JSON document, a workbook),
        or where the reader cannot vouch for one (then the rows read are skipped instead)."""
        return self._resume() if self._resume is not None else None

    def on_read(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time a piece of the file (about 64 KB) is read, rows or not; it
        may raise ReadingStopped to stop reading, which the row iterator then raises."""
        if self._source is not None:
            self._source.on_read = callback

    def __iter__(self) -> Iterator[Row]:
        """Rows in file order; may raise UnreadableFile mid-way (truncated input)."""
        rows, self._rows = self._rows, None
        if rows is None:
            raise RuntimeError("a RecordFile's rows can be read only once")
        return rows

    def __repr__(self) -> str:
        return (
            f"RecordFile(format={self.format!r}, encoding={self.encoding!r}, "
            f"delimiter={self.delimiter!r}, columns={len(self.columns)})"
        )
