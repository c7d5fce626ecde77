"""Reading customer files: format, compression and encoding detection, and the row readers.

``open_records`` reads a binary stream (an open file or a botocore StreamingBody; it need not be
seekable) as CSV, a JSON array, an API body ``{"userProperties": [...]}`` or JSON lines, each
optionally gzip-compressed. CSV and JSON lines are read incrementally; JSON documents are parsed
element by element, so no format holds the whole file in memory.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any, BinaryIO, Final, Protocol

from bik_sync.records.dates import slash_date_order
from bik_sync.records.errors import UnreadableFile
from bik_sync.records.mapping import name_key
from bik_sync.records.options import ReadOptions
from bik_sync.records.validate import RecordBuilder

SAMPLE_BYTES: Final = 1 << 16
#: The longest line (CSV, JSON lines) or JSON record read; a longer one is a reject, read in pieces.
MAX_LINE_CHARS: Final = 1 << 20
#: csv's own limit on one cell (its default); a larger cell on one line is that row's reject.
MAX_CELL_CHARS: Final = csv.field_size_limit()
#: Keys of one top-level JSON object that is one record; more is not a customer record.
_MAX_OBJECT_KEYS: Final = 10_000
# An unclosed quote swallows the lines after it; a cell over csv's limit on one line does not.
_SWALLOWED_LINES: Final = 2
_CHUNK_CHARS: Final = 1 << 16
DELIMITERS: Final = (",", ";", "\t", "|")


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
    ) -> None:
        self.format = format
        self.encoding = encoding
        self.delimiter = delimiter
        self.columns = columns
        self.ignored_columns = ignored_columns
        self._rows: Iterator[Row] | None = rows

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


# --- bytes: a peekable, possibly non-seekable stream -----------------------------------------


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Peekable(io.RawIOBase):
    """Replays what detection peeked at, then reads on from the inner stream."""

    def __init__(self, inner: _Readable) -> None:
        self._inner = inner
        self._head = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def peek_bytes(self, size: int) -> bytes:
        while len(self._head) - self._offset < size:
            chunk = self._inner.read(size - len(self._head) + self._offset)
            if not chunk:
                break
            self._head += chunk
        return self._head[self._offset : self._offset + size]

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._offset < len(self._head):
            size = min(len(view), len(self._head) - self._offset)
            view[:size] = self._head[self._offset : self._offset + size]
            self._offset += size
            if self._offset == len(self._head):
                self._head, self._offset = b"", 0
            return size
        chunk = self._inner.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)


def _read_guard(reason: str) -> Callable[[Exception], UnreadableFile]:
    def convert(exc: Exception) -> UnreadableFile:
        if isinstance(exc, EOFError):
            return UnreadableFile(f"truncated {reason}: the compressed data ends early")
        return UnreadableFile(f"corrupt {reason}: {exc}")

    return convert


_gzip_error = _read_guard("gzip file")
_STREAM_ERRORS: Final = (EOFError, gzip.BadGzipFile, zlib.error)


# --- text: encodings --------------------------------------------------------------------------

_CP1252_TABLE: Final = tuple(bytes([byte]).decode("cp1252", errors="replace") for byte in range(256))
_CP1252_CHARS: Final = tuple(
    char if char != "\ufffd" else chr(byte) for byte, char in enumerate(_CP1252_TABLE)
)
ERRORS: Final = "bik-sync-cp1252"


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode bytes that are not valid in the file's encoding as cp1252 (latin-1 for its 5 gaps)."""
    if isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start : exc.end]
        return "".join(_CP1252_CHARS[byte] for byte in bad), exc.end
    raise exc


codecs.register_error(ERRORS, _cp1252_fallback)

_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f]")
_MAGIC: Final = (
    (b"PK\x03\x04", "a zip archive or an Excel workbook (.xlsx), not CSV or JSON: save it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls), not CSV or JSON: save it as CSV"),
    (b"%PDF", "a PDF document, not CSV or JSON"),
    (b"\x89PNG", "a PNG image, not CSV or JSON"),
    (b"\xff\xd8\xff", "a JPEG image, not CSV or JSON"),
    (b"BZh", "bzip2-compressed; only gzip compression is read"),
    (b"\xfd7zXZ", "xz-compressed; only gzip compression is read"),
    (b"7z\xbc\xaf", "a 7-Zip archive, not CSV or JSON"),
)


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            raise UnreadableFile(f"the file is {what}")
    if b"\x00" in sample:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = max(1, len(sample) // 2)
        if odd > 0.3 * half and even < 0.02 * half:
            return "utf-16-le"
        if even > 0.3 * half and odd < 0.02 * half:
            return "utf-16-be"
        raise UnreadableFile("the file is binary, not CSV or JSON text (it contains NUL bytes)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _decode_sample(sample: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors=ERRORS)
    return decoder.decode(sample, final=False)


# --- format detection -------------------------------------------------------------------------


def _detect_format(text: str, name: str) -> str:
    start = text.lstrip("\ufeff \t\r\n")
    lower = name.lower()
    for suffix in (".gz", ".gzip"):
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    if start.startswith("["):
        return "json"
    if start.startswith("{"):
        if lower.endswith((".jsonl", ".ndjson")):
            return "jsonl"
        first_line = start.split("\n", 1)[0].strip()
        try:
            first = json.loads(first_line)
        except json.JSONDecodeError:
            return "json"  # a pretty-printed document, or one line longer than the sample
        except (RecursionError, ValueError):
            return "jsonl"  # a whole line, too deep or its number too long: the line's own reject
        return "json" if isinstance(first, dict) and _is_wrapper(first) else "jsonl"
    return "csv"


def _is_wrapper(obj: dict[str, Any]) -> bool:
    """An object that holds records rather than being one (see ``_object_rows``)."""
    if any(name_key(key) in _WRAPPERS and isinstance(value, list) for key, value in obj.items()):
        return True
    if len(obj) != 1:
        return False
    (inner,) = obj.values()
    return isinstance(inner, dict) or (
        isinstance(inner, list) and bool(inner) and all(isinstance(item, dict) for item in inner)
    )


def _detect_delimiter(header_line: str) -> str:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


# --- opening ----------------------------------------------------------------------------------


def open_records(stream: BinaryIO, name: str, options: ReadOptions = ReadOptions()) -> RecordFile:  # noqa: B008
    """Open a stream of customer records; see the module docstring for what is read.

    Raises UnreadableFile when the file cannot be read at all (empty, binary, not CSV or JSON, no
    column that maps to a name, ...). Iterating the result may raise it later for input that is cut
    short or garbled further on.
    """
    raw = _Peekable(stream)
    try:
        head = raw.peek_bytes(SAMPLE_BYTES)
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc}") from None
    compressed = head.startswith(b"\x1f\x8b")
    if compressed:
        raw = _Peekable(gzip.GzipFile(fileobj=raw, mode="rb"))
        try:
            head = raw.peek_bytes(SAMPLE_BYTES)
        except _STREAM_ERRORS as exc:
            raise _gzip_error(exc) from None
    if not head.strip():
        raise UnreadableFile("the file is empty" if not head else "the file holds only blank lines")
    if options.format == "xlsx" or (options.format is None and head.startswith(b"PK\x03\x04")):
        from bik_sync.records.xlsx import open_xlsx  # here: xlsx imports this module

        return open_xlsx(raw, name, options, RecordBuilder(options))
    encoding = _detect_encoding(head)
    sample = _decode_sample(head, encoding)
    if not sample.strip("\ufeff \t\r\n"):
        raise UnreadableFile("the file is empty")
    controls = len(_CONTROL.findall(sample))
    if controls > max(2, len(sample) // 100):
        raise UnreadableFile("the file is binary, not CSV or JSON text (it contains control characters)")
    fmt = options.format or _detect_format(sample, name)
    text = io.TextIOWrapper(
        io.BufferedReader(raw, SAMPLE_BYTES), encoding=encoding, errors=ERRORS, newline=""
    )
    stream_error = _gzip_error if compressed else None
    if fmt == "csv":
        return _open_csv(text, sample, encoding, RecordBuilder(options), stream_error)
    # JSON from systems writes ISO dates; a slash date in the sample still decides the file's order.
    builder = RecordBuilder(options, slash_date_order(_JSON_SLASH_DATE.findall(sample)))
    if fmt == "jsonl":
        rows = _jsonl_rows(text, builder, stream_error)
    else:
        rows = _json_rows(text, builder, stream_error)
    # The keys other systems' records had that map to nothing, listed as they are met.
    return RecordFile(
        format=fmt, encoding=encoding, delimiter=None, columns=[], ignored_columns=builder.ignored, rows=rows
    )


# --- CSV --------------------------------------------------------------------------------------


_JSON_SLASH_DATE: Final = re.compile(r'"(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:[ T][^"]{0,20})?)"')
# How many of the file's first rows decide its slash-date order (with what the sample holds).
_DATE_SAMPLE_ROWS: Final = 2000


def _sample_rows(sample: str, delimiter: str, sep_line: bool) -> list[list[str]]:
    """The complete rows of the sample after the header (its last line may be cut: dropped)."""
    text = sample.lstrip("\ufeff")
    if sep_line:
        text = text.partition("\n")[2]
    text = text[: text.rfind("\n") + 1]
    try:
        rows = [
            row
            for row in itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter), _DATE_SAMPLE_ROWS)
            if any(row)
        ]
    except csv.Error:
        return []
    return rows[1:]


# The lines Salesforce writes under a report export ("Export Details" as CSV).
_REPORT_FOOTER: Final = re.compile(
    r"Confidential Information - Do Not Distribute|Copyright \(c\) [0-9-]+ salesforce\.com, inc\..*"
).fullmatch


class _LineGuard:
    """What ``_guarded_lines`` had to do to a line, for the row reader to reject its row."""

    __slots__ = ("flags", "line", "number", "reason", "seen_flags")

    def __init__(self) -> None:
        self.flags = 0  # grows by one for each line that was cut or held NUL characters
        self.seen_flags = 0  # the flags the row reader has turned into rejects
        self.reason = ""
        self.number = 1  # the last row read, and the reader's line after it
        self.line = 0


_NUL_REASON: Final = "the row holds NUL characters (binary data in a text file): remove them"


def _guarded_lines(text: io.TextIOWrapper, guard: _LineGuard) -> Iterator[str]:
    """The text's lines, never longer than MAX_LINE_CHARS in memory.

    A longer line is read on in pieces and dropped, and an empty line stands in for it; a line with
    NUL characters loses them. Both are counted in ``guard`` so that the row is rejected, not sent.
    """
    readline = text.readline
    limit = MAX_LINE_CHARS
    while line := readline(limit):
        if len(line) == limit and line[-1] not in "\r\n":
            while (more := readline(limit)) and len(more) == limit and more[-1] not in "\r\n":
                pass
            guard.flags += 1
            guard.reason = f"the row is longer than {limit:,} characters: is it one record?"
            yield "\n"
            continue
        if "\x00" in line:
            guard.flags += 1
            guard.reason = _NUL_REASON
            line = line.replace("\x00", "")
        yield line


def _strip_guard(cell: str) -> str:
    return cell[1:] if cell[:1] == "'" else cell


def _open_csv(
    text: io.TextIOWrapper,
    sample: str,
    encoding: str,
    builder: RecordBuilder,
    stream_error: Callable[[Exception], UnreadableFile] | None,
) -> RecordFile:
    first_line = sample.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    sep_line = first_line.lower().startswith("sep=") and len(first_line) == 5
    delimiter = first_line[4] if sep_line else _detect_delimiter(first_line)
    if sep_line:
        text.readline()
    guard = _LineGuard()
    reader = csv.reader(
        _guarded_lines(text, guard), delimiter=delimiter, quotechar='"', doublequote=True, strict=False
    )
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
    except csv.Error as exc:
        raise UnreadableFile(f"malformed CSV in the header row: {exc}") from None
    except _STREAM_ERRORS as exc:
        raise (stream_error or _read_guard("file"))(exc) from None
    if header is None:
        raise UnreadableFile("the file is empty")
    columns = [_strip_guard(cell.strip().lstrip("\ufeff").strip()) for cell in header]
    plan = builder.plan(columns, _sample_rows(sample, delimiter, sep_line))
    return RecordFile(
        format="csv",
        encoding=encoding,
        delimiter=delimiter,
        columns=columns,
        ignored_columns=plan.ignored,
        rows=_csv_rows(reader, guard, plan.build, plan.width, stream_error),
    )


_new_row = object.__new__
_ROW_SLOTS: dict[str, Any] = dict(vars(Row))
_set_number = _ROW_SLOTS["number"].__set__
_set_source = _ROW_SLOTS["source"].__set__
_set_record = _ROW_SLOTS["record"].__set__
_set_errors = _ROW_SLOTS["errors"].__set__


def _row(number: int, source: Any, record: dict[str, Any] | None, errors: tuple[str, ...]) -> Row:
    """Row(...) without the frozen dataclass's per-field ``object.__setattr__`` (the hot path)."""
    row: Row = _new_row(Row)
    _set_number(row, number)
    _set_source(row, source)
    _set_record(row, record)
    _set_errors(row, errors)
    return row


def _csv_rows(
    reader: Any,  # a csv reader over _guarded_lines
    guard: _LineGuard,
    build: Callable[[list[str]], tuple[dict[str, Any] | None, tuple[str, ...]]],
    width: int,
    stream_error: Callable[[Exception], UnreadableFile] | None,
) -> Iterator[Row]:
    number = 1
    while True:
        guard.line = reader.line_num
        try:
            for row in _csv_row_run(reader, guard, build, width, number):
                number = row.number
                yield row
            return
        except csv.Error as exc:
            number = guard.number + 1
            # csv goes on after a cell over its limit; that is safe only if the cell began on the
            # line it failed on. Over several lines it is an unclosed quote swallowing rows.
            if "field larger" not in str(exc) or reader.line_num - guard.line > 1:
                raise UnreadableFile(
                    f"malformed CSV at row {number}: a cell runs on for more than {MAX_CELL_CHARS:,} "
                    "characters over several lines (an unclosed quote?)"
                    if "field larger" in str(exc)
                    else f"malformed CSV at row {number}: {exc} (an unclosed quote?)"
                ) from None
            guard.flags = guard.seen_flags = guard.flags
            yield _row(number, [], None, (f"a cell of the row is longer than {MAX_CELL_CHARS:,} characters",))
        except _STREAM_ERRORS as exc:
            raise (stream_error or _read_guard("file"))(exc) from None


def _csv_row_run(
    reader: Any,
    guard: _LineGuard,
    build: Callable[[list[str]], tuple[dict[str, Any] | None, tuple[str, ...]]],
    width: int,
    number: int,
) -> Iterator[Row]:
    """Rows until the reader raises; ``number`` is the row before the first one read. ``guard``
    keeps the last row's number and the reader's line after it, for the caller to say where."""
    make_row = _row
    # One guard apostrophe comes off every cell that starts with one: str.removeprefix mapped
    # over the row runs in C, with an endless supply of "'" for rows of any length.
    unguard = str.removeprefix
    apostrophes = repeat("'")
    guard.number = number
    for raw_cells in reader:
        number += 1
        guard.number, guard.line = number, reader.line_num  # where the next row starts
        if guard.flags != guard.seen_flags:  # a line of this row was cut short or held NUL characters
            guard.seen_flags = guard.flags
            yield make_row(number, [*map(unguard, raw_cells, apostrophes)], None, (guard.reason,))
            continue
        cells = [*map(unguard, raw_cells, apostrophes)]
        if len(cells) != width:
            if not any(cells):
                continue  # a blank line, or a row of empty cells
            if len(cells) < width:
                if any("\n" in cell for cell in cells):
                    # An unclosed quote glues the lines after it into one cell: rejecting this
                    # "row" would hide the rows it swallowed. Stop, and say where to look.
                    raise UnreadableFile(
                        f"unclosed quote in the row starting at row {number}: the lines after it were "
                        "read as one cell; close the quote and upload the file again"
                    )
                if len(cells) == 1 and _REPORT_FOOTER(cells[0]):
                    continue  # Salesforce ends a report export with these: they are not customers
                cells += [""] * (width - len(cells))  # a short row, as spreadsheets write them
            elif any(cells[width:]):
                # More cells than the header: its data is shifted, and no guess puts it back.
                yield make_row(
                    number, cells, None, (f"the row has {len(cells)} cells, the header has {width}",)
                )
                continue
            else:
                del cells[width:]  # trailing empty cells (a trailing delimiter)
        record, errors = build(cells)
        if errors and not any(cells):
            continue
        yield make_row(number, cells, record, errors)


# --- JSON lines -------------------------------------------------------------------------------


def _needs_more(exc: json.JSONDecodeError, size: int) -> bool:
    """Whether a decode error may just be the data ending (not garbage in the middle)."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= size - 8


def _jsonl_rows(
    text: io.TextIOWrapper,
    builder: RecordBuilder,
    stream_error: Callable[[Exception], UnreadableFile] | None,
) -> Iterator[Row]:
    number = 0
    loads = json.loads
    check = builder.check_object
    guard = _LineGuard()
    try:
        for line in _guarded_lines(text, guard):
            number += 1
            if guard.flags != guard.seen_flags:  # cut short, or it held NUL characters
                guard.seen_flags = guard.flags
                reason = guard.reason.replace("the row", f"line {number}")
                yield Row(number, line.strip()[:_RAW_CHARS], None, (reason,))
                continue
            content = line.strip().lstrip("\ufeff")
            if not content:
                continue
            try:
                obj = loads(content)
            except (RecursionError, ValueError) as exc:
                if not isinstance(exc, json.JSONDecodeError):
                    yield Row(number, content[:_RAW_CHARS], None, (f"line {number} {_beyond_limits(exc)}",))
                    continue
                column = exc.colno + len(line) - len(line.lstrip())
                if not line.endswith("\n") and _needs_more(exc, len(content)):
                    raise UnreadableFile(
                        f"truncated JSON at line {number}, column {len(line.rstrip()) + 1}"
                    ) from None
                yield Row(
                    number, content, None, (f"line {number} is not valid JSON: {exc.msg} (column {column})",)
                )
                continue
            record, errors = check(obj)
            yield Row(number, obj, record, errors)
    except _STREAM_ERRORS as exc:
        raise (stream_error or _read_guard("file"))(exc) from None


_RAW_CHARS: Final = 1000  # what a rejects file keeps of a line that could not be read as JSON


def _beyond_limits(exc: Exception) -> str:
    """Why valid-looking JSON could not be read: too deep, or a number too long for Python."""
    if isinstance(exc, RecursionError):
        return "is not valid JSON here: it is nested too deep"
    return "is not valid JSON here: it holds a number of more than 4,300 digits"


# --- JSON documents: an array of records, or an object with userProperties -------------------

_WHITESPACE: Final = re.compile(r"[ \t\r\n]*")


class _JsonCursor:
    """Parses a JSON document value by value from a text stream, knowing line and column."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._text = text
        self._decoder = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line of buf[0]
        self._column = 0  # 0-based column of buf[0]

    def _more(self, at_least: int = _CHUNK_CHARS) -> bool:
        if self.eof:
            return False
        chunk = self._text.read(max(_CHUNK_CHARS, at_least))
        if not chunk:
            self.eof = True
            return False
        if self.pos:
            dropped = self.buf[: self.pos]
            newlines = dropped.count("\n")
            if newlines:
                self._line += newlines
                self._column = len(dropped) - dropped.rfind("\n") - 1
            else:
                self._column += len(dropped)
            self.buf, self.pos = self.buf[self.pos :], 0
        self.buf += chunk
        return True

    def where(self, pos: int) -> str:
        newlines = self.buf.count("\n", 0, pos)
        if newlines:
            column = pos - self.buf.rfind("\n", 0, pos)
            return f"line {self._line + newlines}, column {column}"
        return f"line {self._line}, column {self._column + pos + 1}"

    def truncated(self) -> UnreadableFile:
        return UnreadableFile(f"truncated JSON at {self.where(len(self.buf.rstrip()))}")

    def invalid(self, what: str, pos: int | None = None) -> UnreadableFile:
        return UnreadableFile(f"invalid JSON at {self.where(self.pos if pos is None else pos)}: {what}")

    def peek(self) -> str:
        """The next non-blank character ("" at the end), leaving pos on it."""
        while True:
            match = _WHITESPACE.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self.truncated() if not found else self.invalid(f"expected {char!r}")
        self.pos += 1

    def value(self) -> Any:
        if not self.peek():
            raise self.truncated()
        while True:
            try:
                value, end = self._decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if _needs_more(exc, len(self.buf)) and len(self.buf) - self.pos > MAX_LINE_CHARS:
                    raise self._too_large() from None
                if _needs_more(exc, len(self.buf)) and self._more(len(self.buf)):
                    continue
                if self.eof and _needs_more(exc, len(self.buf)):
                    raise self.truncated() from None
                raise self.invalid(exc.msg, exc.pos) from None
            except (RecursionError, ValueError) as exc:
                raise UnreadableFile(
                    f"the JSON value at {self.where(self.pos)} {_beyond_limits(exc)}"
                ) from None
            if end == len(self.buf) and self._more():
                continue  # a number or literal may go on in the next chunk
            if end - self.pos > MAX_LINE_CHARS:
                raise self._too_large()
            self.pos = end
            return value

    def _too_large(self) -> UnreadableFile:
        return UnreadableFile(
            f"the JSON value at {self.where(self.pos)} is larger than {MAX_LINE_CHARS:,} characters: "
            "no customer record is that large"
        )


def _json_rows(
    text: io.TextIOWrapper,
    builder: RecordBuilder,
    stream_error: Callable[[Exception], UnreadableFile] | None,
) -> Iterator[Row]:
    cursor = _JsonCursor(text)
    check = builder.check_object
    try:
        first = cursor.peek()
        if first == "[":
            yield from _array_rows(cursor, check)
        elif first == "{":
            yield from _object_rows(cursor, check)
        else:
            raise cursor.invalid("a file of records is a JSON array, an object or JSON lines")
        if cursor.peek():
            raise cursor.invalid("unexpected data after the end of the JSON document")
    except _STREAM_ERRORS as exc:
        raise (stream_error or _read_guard("file"))(exc) from None


def _array_rows(cursor: _JsonCursor, check: Callable[[Any], Any]) -> Iterator[Row]:
    cursor.expect("[")
    if cursor.peek() == "]":
        cursor.pos += 1
        return
    number = 0
    while True:
        if not cursor.peek():
            raise cursor.truncated()
        element = cursor.value()
        number += 1
        record, errors = check(element)
        yield Row(number, element, record, errors)
        found = cursor.peek()
        if found == ",":
            cursor.pos += 1
        elif found == "]":
            cursor.pos += 1
            return
        elif not found:
            raise cursor.truncated()
        else:
            raise cursor.invalid("expected ',' or ']' after an array element")


# Keys under which systems wrap their list of records: {"customers": [...]}, {"data": [...], "meta": ...}.
_WRAPPERS: Final = frozenset(
    name_key(key)
    for key in (
        "userProperties", "customers", "contacts", "data", "results", "records", "items", "users",
        "members", "subscribers", "profiles", "people", "leads", "rows", "entries",
    )
)  # fmt: skip


def _object_rows(cursor: _JsonCursor, check: Callable[[Any], Any]) -> Iterator[Row]:
    """An object holding one list of records (the API body ``{"userProperties": [...]}``, or
    ``{"customers": [...]}`` and the like; other keys are metadata), one wrapped record
    (``{"customer": {...}}``), or one record."""
    cursor.expect("{")
    single: dict[str, Any] = {}
    records_key = ""
    if cursor.peek() == "}":
        cursor.pos += 1
    else:
        while True:
            if cursor.peek() != '"':
                raise cursor.truncated() if not cursor.peek() else cursor.invalid("expected a key")
            key = cursor.value()
            cursor.expect(":")
            if isinstance(key, str) and name_key(key) in _WRAPPERS and cursor.peek() == "[":
                if records_key:
                    raise UnreadableFile(
                        f'the JSON object holds two lists of records ("{records_key}" and "{key}"): '
                        "upload one list per file"
                    )
                records_key = key
                yield from _array_rows(cursor, check)
            else:
                single[key] = cursor.value()
                if len(single) > _MAX_OBJECT_KEYS:
                    raise UnreadableFile(
                        f"the JSON object has more than {_MAX_OBJECT_KEYS:,} keys: it is not one record"
                    )
            found = cursor.peek()
            if found == ",":
                cursor.pos += 1
            elif found == "}":
                cursor.pos += 1
                break
            elif not found:
                raise cursor.truncated()
            else:
                raise cursor.invalid("expected ',' or '}'")
    if records_key:
        return
    if len(single) == 1:
        (inner,) = single.values()
        if isinstance(inner, dict):  # {"customer": {...}}: one record, wrapped
            single = inner
        elif isinstance(inner, list) and inner and all(isinstance(item, dict) for item in inner):
            for number, element in enumerate(inner, 1):  # {"anything": [{...}, ...]}
                record, errors = check(element)
                yield Row(number, element, record, errors)
            return
    record, errors = check(single)
    yield Row(1, single, record, errors)
