"""The CSV reader: delimiter, the sample rows that decide the date order, and the row loop.

Lines are read through a guard (no line longer than MAX_LINE_CHARS in memory, NUL characters
dropped) whose findings reject their row; cells go through the header's ``CsvPlan``.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any, Final

from bik_sync.records.dates import DateReader
from bik_sync.records.errors import UnreadableFile
from bik_sync.records.rows import RecordFile, ResumePoint, Row
from bik_sync.records.streams import STREAM_ERRORS, Position, read_guard
from bik_sync.records.validate import RecordBuilder

#: The longest line (CSV, JSON lines) or JSON record read; a longer one is a reject, read in pieces.
MAX_LINE_CHARS: Final = 1 << 20
#: csv's own limit on one cell (its default); a larger cell on one line is that row's reject.
MAX_CELL_CHARS: Final = csv.field_size_limit()
DELIMITERS: Final = (",", ";", "\t", "|")


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


class LineGuard:
    """What ``guarded_lines`` had to do to a line, for the row reader to reject its row."""

    __slots__ = ("flags", "held", "line", "number", "reason", "seen_flags")

    def __init__(self) -> None:
        self.flags = 0  # grows by one for each line that was cut or held NUL characters
        self.seen_flags = 0  # the flags the row reader has turned into rejects
        self.reason = ""
        self.number = 1  # the last row read, and the reader's line after it
        self.line = 0
        # The lines of the row being read, once it runs over more than one (else empty): what the
        # row reader looks at again when such a row may be rows glued together by an unclosed quote.
        self.held: list[str] = []


_NUL_REASON: Final = "the row holds NUL characters (binary data in a text file): remove them"


def guarded_lines(text: io.TextIOWrapper, guard: LineGuard) -> Iterator[str]:
    """The text's lines, never longer than MAX_LINE_CHARS in memory.

    A longer line is read on in pieces and dropped, and an empty line stands in for it; a line with
    NUL characters loses them. Both are counted in ``guard`` so that the row is rejected, not sent.
    The lines of a row that runs over several are kept in ``guard.held`` until the next row starts.
    """
    readline = text.readline
    limit = MAX_LINE_CHARS
    held = guard.held
    given = 0  # lines handed to the reader: its line_num when it asks for the next one
    previous = ""
    while line := readline(limit):
        if len(line) == limit and line[-1] not in "\r\n":
            while (more := readline(limit)) and len(more) == limit and more[-1] not in "\r\n":
                pass
            guard.flags += 1
            guard.reason = f"the row is longer than {limit:,} characters: is it one record?"
            line = "\n"
        elif "\x00" in line:
            guard.flags += 1
            guard.reason = _NUL_REASON
            line = line.replace("\x00", "")
        if given == guard.line:  # the last row ended on the line before: a row starts on this one
            if held:
                held.clear()
        else:  # the reader asks for more of the row it is in
            if not held:
                held.append(previous)
            held.append(line)
        given += 1
        previous = line
        yield line


def _strip_guard(cell: str) -> str:
    return cell[1:] if cell[:1] == "'" else cell


def open_csv(
    text: io.TextIOWrapper,
    sample: str,
    encoding: str,
    builder: RecordBuilder,
    stream_error: Callable[[Exception], UnreadableFile] | None,
    position: Position | None = None,
) -> RecordFile:
    """``position``: where the text is in the file's bytes (a plain file), for parts read by offset."""
    first_line = sample.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    sep_line = first_line.lower().startswith("sep=") and len(first_line) == 5
    delimiter = first_line[4] if sep_line else _detect_delimiter(first_line)
    if sep_line:
        text.readline()
    guard = LineGuard()
    reader = csv.reader(
        guarded_lines(text, guard), delimiter=delimiter, quotechar='"', doublequote=True, strict=False
    )
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            guard.line = reader.line_num  # the lines guarded_lines holds are one row's, never more
            header = next(reader, None)
    except csv.Error as exc:
        raise UnreadableFile(f"malformed CSV in the header row: {exc}") from None
    except STREAM_ERRORS as exc:
        raise (stream_error or read_guard("file"))(exc) from None
    if guard.flags:  # the header's line was cut short (or held NUL): the next line is no header
        raise UnreadableFile(
            f"the header row is longer than {MAX_LINE_CHARS:,} characters (or holds NUL characters): "
            "no file of customers has such a header"
        )
    if header is None:
        raise UnreadableFile("the file is empty")
    columns = [_strip_guard(cell.strip().lstrip("\ufeff").strip()) for cell in header]
    plan = builder.plan(columns, _sample_rows(sample, delimiter, sep_line))
    record_file = RecordFile(
        format="csv",
        encoding=encoding,
        delimiter=delimiter,
        columns=columns,
        ignored_columns=plan.ignored,
        rows=_csv_rows(reader, guard, plan.build, plan.width, stream_error),
    )
    if position is not None:
        record_file.resumable(_resume_point(position, guard, encoding, delimiter, columns, builder))
    return record_file


def resume_csv(
    text: io.TextIOWrapper, point: ResumePoint, builder: RecordBuilder, position: Position
) -> RecordFile:
    """The rows of a CSV file after ``point``, ``text`` reading from its offset: the header and the
    date order are the ones the file's start decided, and rows keep the file's numbers."""
    delimiter = point.delimiter or ","
    columns = list(point.columns)
    guard = LineGuard()
    guard.number = point.number
    reader = csv.reader(
        guarded_lines(text, guard), delimiter=delimiter, quotechar='"', doublequote=True, strict=False
    )
    builder.dates = DateReader(point.date_order, builder.dates.default_region)
    plan = builder.plan(columns)  # no sample rows: the date order stays the one the start decided
    record_file = RecordFile(
        format="csv",
        encoding=point.encoding,
        delimiter=delimiter,
        columns=columns,
        ignored_columns=plan.ignored,
        rows=_csv_rows(reader, guard, plan.build, plan.width, None, point.number),
    )
    record_file.resumable(_resume_point(position, guard, point.encoding, delimiter, columns, builder))
    return record_file


def _resume_point(
    position: Position,
    guard: LineGuard,
    encoding: str,
    delimiter: str,
    columns: list[str],
    builder: RecordBuilder,
) -> Callable[[], ResumePoint | None]:
    """Between rows, ``guard.number`` is the last row's and the text stands at the next one's start."""
    header = tuple(columns)
    order = builder.dates.order

    def point() -> ResumePoint | None:
        offset = position.offset()
        if offset is None:
            return None
        return ResumePoint(
            offset=offset,
            number=guard.number,
            format="csv",
            encoding=encoding,
            codec=position.codec,
            delimiter=delimiter,
            columns=header,
            date_order=order,
        )

    return point


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
    reader: Any,  # a csv reader over guarded_lines
    guard: LineGuard,
    build: Callable[[list[str]], tuple[dict[str, Any] | None, tuple[str, ...]]],
    width: int,
    stream_error: Callable[[Exception], UnreadableFile] | None,
    number: int = 1,  # the row before the first one read (the header's, or the last of an earlier part)
) -> Iterator[Row]:
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
            guard.seen_flags = guard.flags  # the flags of the failed row are its own reject
            guard.number = number  # the last row read, should reading carry on after it elsewhere
            yield _row(number, [], None, (f"a cell of the row is longer than {MAX_CELL_CHARS:,} characters",))
        except STREAM_ERRORS as exc:
            raise (stream_error or read_guard("file"))(exc) from None


def _swallows_rows(cells: list[str], delimiter: str, delimiters: int) -> bool:
    """Whether a cell over several lines holds as many delimiters as a row has (rows glued in?)."""
    return any("\n" in cell and cell.count(delimiter) >= delimiters for cell in cells)


def _glued(lines: list[str], cells: list[str], delimiter: str, width: int) -> bool:
    """Whether a row over ``lines`` whose cell holds a row's worth of delimiters is rows glued
    together by a quote left open, rather than one row whose cell spans lines (a postal address).

    A quote left open runs on to the next quote in the file, which is almost always followed by
    something other than a delimiter or the line's end (the opening quote of a later cell, a quote
    in a sentence), or there is none and the file ends inside it: read strictly, its lines fail.
    When the stray quote does close right before a delimiter (``5'10"``, a second stray quote), the
    row still gives itself away: it has the header's width only if the quote closed in the column
    it opened in, and then that cell holds the rest of the row it opened in, whole rows, and the
    start of the row it closed in. Where the row's cells have that shape it is taken for glued rows:
    the file itself cannot tell them from one row, and guessing wrong would send people's data as
    someone else's.
    """
    try:
        strict = list(csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=True))
    except csv.Error:
        return True
    if strict != [cells]:
        return True
    if len(cells) != width and (len(cells) < width or any(cells[width:])):
        return True  # a cell count the row loop would reject or refuse: these lines are no one row
    whole = width - 1
    for column, cell in enumerate(cells):
        if "\n" not in cell:
            continue
        first, *inner, last = (piece.count(delimiter) for piece in cell.split("\n"))
        if first == whole - column and last == column and all(count == whole for count in inner):
            return True
    return False


def _csv_row_run(
    reader: Any,
    guard: LineGuard,
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
    delimiter = reader.dialect.delimiter
    swallowed = max(width - 1, 1)
    for raw_cells in reader:
        number += 1
        started_at = guard.line
        guard.number, guard.line = number, reader.line_num  # where the next row starts
        if (
            guard.line - started_at > 1
            and _swallows_rows(raw_cells, delimiter, swallowed)
            and _glued(guard.held, raw_cells, delimiter, width)
        ):
            # A quote left open glued the lines after it into a cell that holds a row's worth of
            # delimiters: sending this row would send other people's data as this one's.
            raise UnreadableFile(
                f"unclosed quote in the row starting at row {number}: the lines after it were read "
                "as one cell; close the quote and upload the file again"
            )
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
