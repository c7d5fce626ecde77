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

    def attach_source(self, source: Any) -> None:
        self._source = source

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
