"""Excel workbooks (.xlsx): one sheet read as rows of string cells and built by the CSV plan.

openpyxl reads a zip archive, which needs a seekable file: the stream is spooled to a temporary
file first (with a size cap). The sheet is then streamed in read-only mode, so memory does not grow
with the number of rows. Cells become the strings a CSV export of the sheet would hold, except that
numbers keep all their digits (a phone typed as a number is stored as one) and dates become ISO
dates; the rows then go through the same ``CsvPlan`` as CSV rows, so every rule is shared.
"""

from __future__ import annotations

import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Final, Protocol, cast

from bik_sync.records.csv_plan import CsvPlan
from bik_sync.records.errors import UnreadableFile
from bik_sync.records.options import ReadOptions
from bik_sync.records.rows import RecordFile, Row
from bik_sync.records.validate import RecordBuilder

if TYPE_CHECKING:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

# Lambda's /tmp is 512 MB by default and the rejects spool shares it. A full Excel sheet of customers
# (1,048,576 rows) is some 40 MB; at openpyxl's ~7k rows/s, 256 MB is about all one invocation reads.
MAX_WORKBOOK_BYTES: Final = 256 * 1024 * 1024
# openpyxl holds the whole shared-strings table (every distinct text of the workbook) in memory:
# measured 2.4x (emails) to 3.8x (short names) its XML size, so 128 MB stays under half of ingest's 1 GB.
MAX_SHARED_STRINGS_BYTES: Final = 128 * 1024 * 1024
MAX_COLUMNS: Final = 16_384  # Excel's own limit (column XFD)
MAX_ROWS: Final = 1_048_576  # Excel's own limit; also bounds a sheet whose row numbers jump ahead
_SPOOL_IN_MEMORY: Final = 8 * 1024 * 1024
_COPY_CHUNK: Final = 1024 * 1024
# Integers up to 2**53 are exact in a double; above it a float's trailing digits are not data.
_EXACT_FLOAT_INTEGERS: Final = 2**53
_NOT_A_WORKBOOK: Final = "the file is a zip archive, not CSV, JSON or an Excel workbook"
_WHITESPACE: Final = re.compile(r"\s+")


def cell_text(value: Any) -> str:
    """A cell value as the string the CSV path expects, never in scientific notation.

    A phone or an id typed as a number is stored as a number (often a float): its digits are written
    out in full. A whole float above 2**53 keeps its exponent (``1.2345678901234568E+18``): its last
    digits were never stored, and an id in scientific notation is a reject, not an invented number.
    """
    if value is None:
        return ""
    if type(value) is str:
        return value
    if value is True:
        return "TRUE"
    if value is False:
        return "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) < _EXACT_FLOAT_INTEGERS:
                return str(int(value))
            return format(Decimal(repr(value)).normalize(), "E")
        return format(Decimal(repr(value)), "f")  # shortest digits, and 1e-05 -> 0.00001
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)  # a duration (timedelta) or anything else openpyxl may hand out


def _one_line(exc: BaseException) -> str:
    # openpyxl wraps XML errors in a ValueError whose text spans lines; the cause says what broke.
    cause = exc.__cause__ if isinstance(exc, ValueError) and exc.__cause__ else exc
    text = str(cause.args[0]) if isinstance(cause, KeyError) and cause.args else str(cause)
    return _WHITESPACE.sub(" ", text).strip() or type(cause).__name__


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes | None: ...


def _spool(raw: _Readable) -> IO[bytes]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    size = 0
    try:
        while chunk := raw.read(_COPY_CHUNK) or b"":
            size += len(chunk)
            if size > MAX_WORKBOOK_BYTES:
                raise UnreadableFile(
                    f"the workbook is larger than {MAX_WORKBOOK_BYTES // (1024 * 1024)} MB; "
                    "save it as CSV (or split it) and upload that"
                )
            spool.write(chunk)
    except UnreadableFile:
        spool.close()
        raise
    except EOFError:
        spool.close()
        raise UnreadableFile("truncated gzip file: the compressed data ends early") from None
    except (OSError, zlib.error) as exc:  # a read error, a corrupt gzip layer, or /tmp full
        spool.close()
        raise UnreadableFile(f"cannot read the workbook: {_one_line(exc)}") from None
    spool.seek(0)
    return spool


def _check_archive(spool: IO[bytes]) -> None:
    """Refuse a zip that is not a workbook, or one whose strings table would not fit in memory."""
    if spool.read(4) != b"PK\x03\x04":  # format="xlsx" was asked for a file that is no zip at all
        raise UnreadableFile("the file is not an Excel workbook (.xlsx)")
    try:
        with zipfile.ZipFile(spool) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise UnreadableFile(
            f"the file is a zip archive or an Excel workbook (.xlsx) that is truncated or corrupt: "
            f"{_one_line(exc)}"
        ) from None
    finally:
        spool.seek(0)
    names = {info.filename.lower() for info in infos}
    if "[content_types].xml" not in names or not any(name.endswith("workbook.xml") for name in names):
        # Other spreadsheets that are zips too: say what to save them as.
        if any(name.endswith("workbook.bin") for name in names):
            raise UnreadableFile(
                "the file is an Excel binary workbook (.xlsb), not .xlsx: save it as .xlsx or CSV"
            )
        if "content.xml" in names and "mimetype" in names:
            raise UnreadableFile(
                "the file is an OpenDocument file (.ods), not .xlsx: save it as .xlsx or CSV"
            )
        raise UnreadableFile(_NOT_A_WORKBOOK)
    strings = sum(info.file_size for info in infos if info.filename.lower().endswith("sharedstrings.xml"))
    if strings > MAX_SHARED_STRINGS_BYTES:
        raise UnreadableFile(
            f"the workbook's text table is {strings // (1024 * 1024)} MB, more than the "
            f"{MAX_SHARED_STRINGS_BYTES // (1024 * 1024)} MB that can be read; save the sheet as CSV"
        )


def _select_sheet(worksheets: list[ReadOnlyWorksheet], wanted: str | None) -> ReadOnlyWorksheet:
    if not worksheets:
        raise UnreadableFile("the workbook has no worksheet")
    if wanted is None:
        # The first sheet the user sees: a hidden lookup sheet in front is not the data.
        visible = [ws for ws in worksheets if ws.sheet_state == "visible"]
        return (visible or worksheets)[0]
    for match in (str.__eq__, lambda a, b: a.casefold() == b.casefold()):  # Excel ignores case
        for ws in worksheets:
            if match(ws.title, wanted):
                return ws
    titles = ", ".join(repr(ws.title) for ws in worksheets)
    raise UnreadableFile(f"the workbook has no sheet named {wanted!r}; its sheets are {titles}")


def open_xlsx(raw: _Readable, name: str, options: ReadOptions, builder: RecordBuilder) -> RecordFile:
    """Open an Excel workbook from a (possibly non-seekable) stream; rows are read lazily.

    ``name`` is unused (the content says it is a workbook); it is here for symmetry with the others.
    """
    del name
    import openpyxl  # here, not at the top: only workbooks pay for importing it
    from openpyxl.utils.exceptions import InvalidFileException

    # What a damaged archive or garbled XML raises out of zipfile, zlib, ElementTree and openpyxl.
    errors = (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        KeyError,  # a part the manifest names is missing
        OSError,
        ValueError,
        TypeError,  # openpyxl's descriptors refuse a wrongly typed attribute with TypeError
        SyntaxError,  # xml.etree.ElementTree.ParseError
        NotImplementedError,  # a zip compression method Python does not read
        InvalidFileException,
    )
    spool = _spool(raw)
    try:
        _check_archive(spool)
        try:
            with warnings.catch_warnings():
                # Its notes on parts it skips (data validation, no default style) are not the user's.
                warnings.simplefilter("ignore", UserWarning)
                workbook = openpyxl.load_workbook(spool, read_only=True, data_only=True, keep_links=False)
        except errors as exc:
            raise UnreadableFile(f"corrupt Excel workbook: {_one_line(exc)}") from None
        try:
            sheet = _select_sheet(list(workbook.worksheets), options.sheet)
            sheet.reset_dimensions()  # trust the cells, not the stored size: some writers get it wrong
            # The stubs type iter_rows for Worksheet only; ReadOnlyWorksheet's is the same method.
            values: Iterator[tuple[Any, ...]] = cast(Any, sheet).iter_rows(values_only=True)
            where = f"sheet {sheet.title!r}"
            number, header, plan, skipped = _header(values, errors, where, builder)
        except BaseException:
            workbook.close()
            raise
    except BaseException:
        spool.close()
        raise
    return RecordFile(
        format="xlsx",
        encoding="xlsx",
        delimiter=None,
        columns=header,
        ignored_columns=plan.ignored,
        rows=_rows(values, number, plan, errors, where, (workbook, spool)),
        notes=[_skipped_note(skipped, number)] if skipped else [],
    )


def _next(values: Iterator[tuple[Any, ...]], errors: tuple[type[BaseException], ...], at: str) -> Any:
    try:
        return next(values, None)
    except errors as exc:
        # Not openpyxl's text: it can quote the cell ("could not convert string to float: '...'").
        raise UnreadableFile(
            f"corrupt Excel workbook at {at}: a cell cannot be read ({type(exc).__name__})"
        ) from None


#: The header of a sheet is looked for in its first rows (from its first row that is not blank):
#: Excel reports and some CRMs write a title ("Customer export, 1 Dec 2026"), notes or blank rows
#: above it.
HEADER_WITHIN_ROWS: Final = 10


def _header(
    values: Iterator[tuple[Any, ...]],
    errors: tuple[type[BaseException], ...],
    where: str,
    builder: RecordBuilder,
) -> tuple[int, list[str], CsvPlan, int]:
    """The header row (its number, cells and plan) and how many rows that were not blank it skipped.

    The header is the first row that names a first and last name column (or a whole name), by the
    rules of a CSV file's header (``CsvPlan``); rows above it within ``HEADER_WITHIN_ROWS`` are a
    title or notes. When no row there is a header, the first row's reason is the sheet's.
    """
    number, skipped, first = 0, 0, 0
    refusal: UnreadableFile | None = None
    while (cells := _next(values, errors, f"row {number + 1} of {where}")) is not None:
        number += 1
        if number > MAX_ROWS or (first and number - first >= HEADER_WITHIN_ROWS):
            break
        header = [cell_text(value).strip().removeprefix("'") for value in cells]
        while header and not header[-1]:
            header.pop()  # formatted but empty cells after the last heading
        if not header:
            continue
        if len(header) > MAX_COLUMNS:
            raise UnreadableFile(f"the header row has {len(header)} columns, more than Excel's {MAX_COLUMNS}")
        try:
            return number, header, builder.plan(header), skipped
        except UnreadableFile as exc:
            refusal, first = refusal or exc, first or number
        skipped += 1
    raise refusal or UnreadableFile(f"the workbook's {where} is empty")


def _skipped_note(skipped: int, header_row: int) -> str:
    rows = "row" if skipped == 1 else "rows"
    return (
        f"the header is row {header_row}: {skipped} {rows} above it (a title or notes) not read as "
        "customers; row numbers are the sheet's"
    )


def _rows(
    values: Iterator[tuple[Any, ...]],
    number: int,
    plan: CsvPlan,
    errors: tuple[type[BaseException], ...],
    where: str,
    resources: tuple[Any, IO[bytes]],
) -> Iterator[Row]:
    width, build = plan.width, plan.build
    try:
        while (found := _next(values, errors, f"row {number + 1} of {where}")) is not None:
            number += 1
            if number > MAX_ROWS:
                raise UnreadableFile(f"the {where} has more than {MAX_ROWS:,} rows, more than Excel allows")
            # The guard apostrophe comes off as in CSV, so a pasted rejects cell reads back the same.
            cells = [cell_text(value).removeprefix("'") for value in found]
            if not any(cells):
                continue  # a blank row (read-only mode also yields rows missing from the sheet)
            if len(cells) > width and not any(cells[width:]):
                del cells[width:]
            elif len(cells) < width:
                cells += [""] * (width - len(cells))  # read-only mode drops trailing empty cells
            if len(cells) != width:
                yield Row(number, cells, None, (f"the row has {len(cells)} cells, the header has {width}",))
                continue
            record, row_errors = build(cells)
            yield Row(number, cells, record, row_errors)
    finally:
        workbook, spool = resources
        workbook.close()
        spool.close()
