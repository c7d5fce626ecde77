"""Rejects files: what could not go in, with why, ready to fix and upload again.

CSV and .xlsx input get a CSV in the input's own columns plus ``_row`` and ``_error`` (same delimiter,
UTF-8 with a BOM so Excel opens it); any other input gets JSON lines with ``_row`` and ``_error``. A
cell that a spreadsheet would run as a formula is written with a leading apostrophe, which the
reader strips again, so a fixed rejects file reads back exactly as it was written.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from typing import Any, BinaryIO, Final

from bik_sync import jsonbytes
from bik_sync.records.rows import RecordFile, Row

ROW_KEY: Final = "_row"
ERROR_KEY: Final = "_error"
RAW_KEY: Final = "_raw"
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "'")


def guard_cell(cell: str) -> str:
    """Prefix an apostrophe where a spreadsheet would run the cell as a formula or drop digits.

    The reader strips one leading apostrophe from every cell, so a cell that starts with one is
    guarded too, and long digit strings (Shopify ids, phone numbers) keep their digits in Excel.
    """
    if cell.startswith(_FORMULA_STARTS) or (len(cell) >= 12 and cell.isdigit()):
        return "'" + cell
    return cell


class RejectsWriter:
    """Writes the rejected rows of one RecordFile, in a shape that can be uploaded again."""

    def __init__(self, out: BinaryIO, record_file: RecordFile) -> None:
        self._out = out
        self.count = 0
        self._csv = record_file.format in ("csv", "xlsx")  # a workbook's rejects are a CSV
        if self._csv:
            self.extension = ".csv"
            self.content_type = "text/csv; charset=utf-8"
            columns = record_file.columns
            self._keep = [i for i, name in enumerate(columns) if name not in (ROW_KEY, ERROR_KEY)]
            self._width = len(columns)
            self._buffer = io.StringIO()
            self._writer = csv.writer(
                self._buffer,
                delimiter=record_file.delimiter or ",",
                lineterminator="\r\n",
                quoting=csv.QUOTE_MINIMAL,
            )
            self._writer.writerow([guard_cell(columns[i]) for i in self._keep] + [ROW_KEY, ERROR_KEY])
            out.write(codecs.BOM_UTF8)
            self._flush()
        else:
            self.extension = ".jsonl"
            self.content_type = "application/x-ndjson"

    def _flush(self) -> None:
        self._out.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def write(self, row: Row, error: str | None = None) -> None:
        """Write one rejected row; ``error`` defaults to the row's own errors joined with '; '."""
        message = "; ".join(row.errors) if error is None else error
        if self._csv:
            cells = [str(cell) for cell in row.source] if isinstance(row.source, list) else [str(row.source)]
            if len(cells) == self._width:
                kept = [cells[i] for i in self._keep]
            elif len(cells) < self._width:
                padded = cells + [""] * (self._width - len(cells))
                kept = [padded[i] for i in self._keep]
            else:
                extra = cells[self._width :]
                kept = [cells[i] for i in self._keep] + ([] if not any(extra) else extra)
            self._writer.writerow(
                [guard_cell(cell) for cell in kept] + [str(row.number), guard_cell(message)]
            )
            self._flush()
        else:
            self._out.write(_json_line(row.source, row.number, message))
        self.count += 1


class JsonlRejectsWriter:
    """Rejects of API records (as sent to BIK) as JSON lines with ``_row`` and ``_error``."""

    extension: Final = ".jsonl"
    content_type: Final = "application/x-ndjson"

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.count = 0

    def write(self, row_number: int | None, record: Mapping[str, Any], error: str) -> None:
        self._out.write(_json_line(record, row_number, error))
        self.count += 1


def _json_line(source: Any, number: int | None, error: str) -> bytes:
    if isinstance(source, Mapping):
        line = {key: value for key, value in source.items() if key not in (ROW_KEY, ERROR_KEY)}
    else:
        line = {RAW_KEY: source}
    line[ROW_KEY] = number
    line[ERROR_KEY] = error
    # A lone surrogate (from a JSON escape) is written back as the same escape, so the line re-reads.
    return jsonbytes.dumps(line, default=str, errors="backslashreplace") + b"\n"
