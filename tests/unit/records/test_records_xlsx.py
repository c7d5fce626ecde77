""".xlsx workbooks: full digits, ISO dates, sheet choice, sheet row numbers, damaged files, rejects."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bik_sync.records import ReadOptions, RecordFile, RejectsWriter, Row, UnreadableFile, xlsx
from bik_sync.records.formats import open_records
from bik_sync.records.xlsx import cell_text
from bik_sync.validate_cmd import main

from .conftest import OneWayStream

SHOPIFY_HEADER = [
    "Customer ID",
    "First Name",
    "Last Name",
    "Email",
    "Accepts Email Marketing",
    "Phone",
    "Created",
    "Note",
]


def _workbook(sheets: dict[str, list[list[Any]]], hidden: tuple[str, ...] = ()) -> bytes:
    """A workbook written by openpyxl as Excel stores it: numbers as numbers, dates as dates."""
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for number, row in enumerate(rows, start=1):
            for column, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=number, column=column, value=value)
        if title in hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _shopify_rows() -> list[list[Any]]:
    return [
        SHOPIFY_HEADER,
        # a phone and a 13-digit id typed as numbers, a boolean, a date, the last cell left empty
        [7022551234567, "Asha", "Verma", "asha@example.in", True, 919876543210, datetime(2024, 3, 1), None],
        [7022551234568, "Ravi", "Kumar", "ravi@example.in", False, "+91 98111 22233", date(2023, 12, 31)],
    ]


def _rewrite(data: bytes, part: str, change: Callable[[bytes], bytes]) -> bytes:
    """The same workbook with one part changed, as another writer (or damage) would leave it."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dest:
        for info in source.infolist():
            content = source.read(info)
            dest.writestr(info.filename, change(content) if info.filename == part else content)
    return out.getvalue()


def _read(data: bytes, name: str = "customers.xlsx", **options: Any) -> tuple[RecordFile, list[Row]]:
    record_file = open_records(OneWayStream(data, chunk=4096), name, ReadOptions(**options))  # type: ignore[arg-type]
    return record_file, list(record_file)


def _unreadable(data: bytes, **options: Any) -> str:
    with pytest.raises(UnreadableFile) as caught:
        _read(data, **options)
    reason = str(caught.value)
    assert "\n" not in reason and "Traceback" not in reason
    return reason


def test_a_shopify_workbook_keeps_every_digit_and_turns_dates_and_booleans_into_text_the_core_reads() -> None:
    # Given a Shopify-style export saved as .xlsx from a non-seekable stream
    record_file, rows = _read(_workbook({"customers_export": _shopify_rows()}))
    # Then it is read as a workbook, with the header as columns and the unknown one ignored
    assert (record_file.format, record_file.delimiter) == ("xlsx", None)
    assert record_file.columns == SHOPIFY_HEADER
    assert record_file.ignored_columns == ["Note"]
    # And the cells are the digits as typed, TRUE/FALSE, an ISO date, and "" for the empty last cell
    assert rows[0].source == [
        "7022551234567",
        "Asha",
        "Verma",
        "asha@example.in",
        "TRUE",
        "919876543210",
        "2024-03-01",
        "",
    ]
    assert [row.number for row in rows] == [2, 3]
    assert rows[0].errors == () and rows[1].errors == ()
    first, second = rows[0].record, rows[1].record
    assert first is not None and second is not None
    assert first["partnerCustomerId"] == "7022551234567"
    assert first["phoneNumber"] == "+919876543210"
    assert (first["emailMarketingConsent"], second["emailMarketingConsent"]) == (True, False)
    assert (first["createdAt"], second["createdAt"]) == ("2024-03-01", "2023-12-31")
    assert second["phoneNumber"] == "+919811122233"


def test_numbers_stored_in_scientific_notation_come_out_as_their_full_digits() -> None:
    # Given a workbook whose writer stored the phone and the id as exponent floats
    def exponents(xml: bytes) -> bytes:
        return xml.replace(b"<v>919876543210</v>", b"<v>9.1987654321E+11</v>").replace(
            b"<v>7022551234567</v>", b"<v>7.022551234567E+12</v>"
        )

    data = _rewrite(_workbook({"Sheet1": _shopify_rows()}), "xl/worksheets/sheet1.xml", exponents)
    assert b"9.1987654321E+11" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    # When it is read
    _, rows = _read(data)
    # Then the digits survive, never '9.19876543210E+11' nor '919876543210.0'
    assert rows[0].source[0] == "7022551234567" and rows[0].source[5] == "919876543210"
    assert rows[0].record is not None and rows[0].record["phoneNumber"] == "+919876543210"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("  Asha ", "  Asha "),
        (True, "TRUE"),
        (False, "FALSE"),
        (919876543210, "919876543210"),
        (919876543210.0, "919876543210"),
        (7.02255e12, "7022550000000"),
        (-5.0, "-5"),
        (12345678901234567890, "12345678901234567890"),  # an int is exactly what the file holds
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e-05, "0.00001"),
        (2.0**60, "1.152921504606847E+18"),  # digits a double never held are not invented
        (datetime(2024, 3, 1), "2024-03-01"),
        (datetime(2024, 3, 1, 10, 5, 7), "2024-03-01T10:05:07"),
        (date(2024, 3, 1), "2024-03-01"),
        (time(10, 5), "10:05:00"),
    ],
)
def test_cell_values_become_the_strings_the_csv_path_reads(value: Any, text: str) -> None:
    assert cell_text(value) == text


def test_a_sheet_can_be_chosen_by_name_and_the_first_visible_one_is_the_default() -> None:
    customers = [["First Name", "Last Name", "Email"], ["Asha", "Verma", "asha@example.in"]]
    data = _workbook({"Summary": [["Total", 1]], "Customers": customers})
    # The first sheet is the default: here a summary with no name column
    assert "no column maps to firstName" in _unreadable(data)
    # A sheet named by the option is read instead (Excel ignores case in sheet names)
    for wanted in ("Customers", "customers"):
        record_file, rows = _read(data, sheet=wanted)
        assert record_file.columns == customers[0]
        assert [row.source for row in rows] == [customers[1]]
    # A hidden sheet in front is not the default: the user sees the customers first
    _, rows = _read(_workbook({"Lookup": [["code"]], "Customers": customers}, hidden=("Lookup",)))
    assert [row.source for row in rows] == [customers[1]]


def test_an_unknown_sheet_name_is_refused_with_the_sheets_there_are() -> None:
    data = _workbook({"Summary": [["Total"]], "Customers": [["First Name", "Last Name"]]})
    reason = _unreadable(data, sheet="Contacts")
    assert reason == "the workbook has no sheet named 'Contacts'; its sheets are 'Summary', 'Customers'"


def test_row_numbers_are_the_sheet_rows_and_blank_short_and_long_rows_are_handled_as_in_csv() -> None:
    # Given a header on row 2, blank rows between records, a short row and rows wider than the header
    rows_in: list[list[Any]] = [
        [],
        ["First Name", "Last Name", "Email", "Phone"],
        ["Asha", "Verma", "asha@example.in", 919876543210],
        [],
        ["Ravi", "Kumar", "ravi@example.in"],  # the empty Phone is not stored at all
        [],
        [],
        ["Mina", "Das", "mina@example.in", None, None, "stray"],
        ["Ojas", "Rao", "ojas@example.in", 919811122233],
    ]
    book = openpyxl.load_workbook(io.BytesIO(_workbook({"Sheet1": rows_in})))
    book.active.cell(row=9, column=7).number_format = "0.00"  # type: ignore[union-attr]  # formatted, empty
    out = io.BytesIO()
    book.save(out)
    # When it is read
    record_file, rows = _read(out.getvalue())
    # Then the numbers are the sheet's rows; short rows are padded; empty extra cells are dropped
    assert [row.number for row in rows] == [3, 5, 8, 9]
    assert rows[1].source == ["Ravi", "Kumar", "ravi@example.in", ""]
    assert rows[1].errors == ()
    assert rows[2].errors == ("the row has 6 cells, the header has 4",)
    assert rows[3].source == ["Ojas", "Rao", "ojas@example.in", "919811122233"]
    assert rows[3].errors == ()
    assert record_file.columns == rows_in[1]


def test_guard_apostrophes_and_numbers_in_the_header_are_cleaned_as_in_csv() -> None:
    # Given a header with a guarded heading and a number, and a row pasted from a rejects CSV
    data = _workbook(
        {"S": [["'First Name", " Last Name ", "Phone", 2024], ["Asha", "Verma", "'+919811122233"]]}
    )
    record_file, rows = _read(data)
    assert record_file.columns == ["First Name", "Last Name", "Phone", "2024"]
    assert record_file.ignored_columns == ["2024"]
    assert rows[0].source == ["Asha", "Verma", "+919811122233", ""]
    assert rows[0].errors == ()


def test_a_zip_that_is_not_a_workbook_is_refused_in_one_line() -> None:
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("customers.csv", "First Name,Last Name\nAsha,Verma\n")
    office = io.BytesIO()
    with zipfile.ZipFile(office, "w") as archive:  # a Word document: a package, but no workbook
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    for data in (plain.getvalue(), office.getvalue()):
        assert _unreadable(data) == "the file is a zip archive, not CSV, JSON or an Excel workbook"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (
            ("[Content_Types].xml", "xl/workbook.bin"),
            "the file is an Excel binary workbook (.xlsb), not .xlsx: save it as .xlsx or CSV",
        ),
        (
            ("mimetype", "content.xml"),
            "the file is an OpenDocument file (.ods), not .xlsx: save it as .xlsx or CSV",
        ),
    ],
)
def test_other_zipped_spreadsheets_are_refused_with_what_to_save_them_as(
    parts: tuple[str, ...], reason: str
) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for part in parts:
            archive.writestr(part, "x")
    assert _unreadable(out.getvalue()) == reason


def test_a_truncated_workbook_is_refused_in_one_line() -> None:
    data = _workbook({"Sheet1": _shopify_rows()})
    reason = _unreadable(data[: len(data) // 2])
    assert reason.startswith(
        "the file is a zip archive or an Excel workbook (.xlsx) that is truncated or corrupt"
    )


def test_garbled_sheet_xml_stops_with_the_row_after_the_rows_before_it() -> None:
    # Given a workbook whose sheet XML breaks off inside row 3
    def cut(xml: bytes) -> bytes:
        return xml[: xml.index(b'<row r="3"')] + b'<row r="3"><c r="A3" t="inlineStr"><is><t>Ra'

    data = _rewrite(_workbook({"Sheet1": [*_shopify_rows(), ["x"]]}), "xl/worksheets/sheet1.xml", cut)
    record_file = open_records(io.BytesIO(data), "customers.xlsx")
    seen: list[int] = []
    # When it is read, the complete rows come first, then a one-line reason saying where
    with pytest.raises(UnreadableFile) as caught:
        seen.extend(row.number for row in record_file)
    assert seen == [2]
    assert str(caught.value).startswith("corrupt Excel workbook at row 3 of sheet 'Sheet1': ")
    assert "\n" not in str(caught.value)


def test_a_corrupt_workbook_part_is_refused_in_one_line() -> None:
    data = _rewrite(_workbook({"Sheet1": _shopify_rows()}), "xl/workbook.xml", lambda xml: xml[:40])
    assert _unreadable(data).startswith("corrupt Excel workbook: ")


def test_format_xlsx_on_a_file_that_is_not_one_is_refused() -> None:
    assert _unreadable(b"First Name,Last Name\nAsha,Verma\n", format="xlsx") == (
        "the file is not an Excel workbook (.xlsx)"
    )


def test_a_gzip_compressed_workbook_is_read() -> None:
    _, rows = _read(gzip.compress(_workbook({"Sheet1": _shopify_rows()})), "customers.xlsx.gz")
    assert [row.source[5] for row in rows] == ["919876543210", "+91 98111 22233"]


def test_the_limits_are_refusals_that_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _workbook({"Sheet1": [*_shopify_rows(), [], [], ["Late", "Row", "late@example.in"]]})
    monkeypatch.setattr(xlsx, "MAX_WORKBOOK_BYTES", len(data) - 1)
    assert "the workbook is larger than" in _unreadable(data)
    monkeypatch.undo()

    monkeypatch.setattr(xlsx, "MAX_COLUMNS", 7)
    assert _unreadable(data) == "the header row has 8 columns, more than Excel's 7"
    monkeypatch.undo()

    # Rows past Excel's last row (a sheet whose row numbers jump far ahead) stop the read
    monkeypatch.setattr(xlsx, "MAX_ROWS", 4)
    record_file = open_records(io.BytesIO(data), "customers.xlsx")
    seen: list[int] = []
    with pytest.raises(UnreadableFile, match="has more than 4 rows"):
        seen.extend(row.number for row in record_file)
    assert seen == [2, 3]
    monkeypatch.undo()

    # openpyxl holds the shared-strings table in memory: its declared size is capped
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "xl/sharedStrings.xml" not in archive.namelist()  # openpyxl writes inline strings
    big = io.BytesIO(data)
    with zipfile.ZipFile(big, "a") as archive:
        archive.writestr("xl/sharedStrings.xml", "<sst>" + "<si><t>x</t></si>" * 100 + "</sst>")
    monkeypatch.setattr(xlsx, "MAX_SHARED_STRINGS_BYTES", 1000)
    assert "text table" in _unreadable(big.getvalue())


def test_the_workbook_is_opened_read_only_and_openpyxl_is_imported_only_for_workbooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, Any]] = []
    load = openpyxl.load_workbook

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return load(*args, **kwargs)

    monkeypatch.setattr(openpyxl, "load_workbook", spy)
    _read(_workbook({"Sheet1": _shopify_rows()}))
    assert seen and seen[0]["read_only"] is True and seen[0]["data_only"] is True
    # A cold start that reads CSV never imports openpyxl
    probe = "import sys, bik_sync.records, bik_sync.records.xlsx; print('openpyxl' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_rejects_of_a_workbook_are_a_csv_with_row_and_error_that_reads_back() -> None:
    rows_in = [*_shopify_rows(), [7022551234569, "Mina", None, "mina@example.in", True, 919822233344]]
    record_file = open_records(io.BytesIO(_workbook({"Sheet1": rows_in})), "customers.xlsx")
    out = io.BytesIO()
    writer = RejectsWriter(out, record_file)
    for row in record_file:
        if row.errors:
            writer.write(row)
    assert (writer.count, writer.extension) == (1, ".csv")
    text = out.getvalue().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == [*SHOPIFY_HEADER, "_row", "_error"]
    # Long digit strings are guarded so Excel keeps them; the row is the sheet's row 4
    assert lines[1] == [
        "'7022551234569",
        "Mina",
        "",
        "mina@example.in",
        "TRUE",
        "'919822233344",
        "",
        "",
        "4",
        '"lastName" is required',
    ]
    # And the rejects CSV reads back with the same cells
    again = open_records(io.BytesIO(out.getvalue()), "customers.rejects.csv")
    assert [row.source[:8] for row in again] == [
        ["7022551234569", "Mina", "", "mina@example.in", "TRUE", "919822233344", "", ""]
    ]


def test_validate_reads_a_named_sheet_and_refuses_an_unknown_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "customers.xlsx"
    rows_in = [*_shopify_rows(), [None, "Mina", None, "mina@example.in"]]
    path.write_bytes(_workbook({"Summary": [["Total", 3]], "Customers": rows_in}))
    rejects = tmp_path / "rejects.csv"
    # A named sheet is read, and its rejects are a CSV
    code = main([str(path), "--sheet", "Customers", "--json", "--rejects", str(rejects)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {key: summary[key] for key in ("format", "rows", "valid", "rejected", "ignored_columns")} == {
        "format": "xlsx",
        "rows": 3,
        "valid": 2,
        "rejected": 1,
        "ignored_columns": ["Note"],
    }
    lines = rejects.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].endswith(",_row,_error") and lines[1].startswith(",Mina,,mina@example.in,")
    # An unknown sheet exits 2 with the sheets there are
    assert main([str(path), "--sheet", "Contacts"]) == 2
    assert "its sheets are 'Summary', 'Customers'" in capsys.readouterr().err


def test_openpyxl_notes_on_what_it_fills_in_do_not_reach_the_logs() -> None:
    # Given a workbook from a writer that left its stylesheet empty (openpyxl warns about it)
    bare = b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
    data = _rewrite(_workbook({"Sheet1": _shopify_rows()}), "xl/styles.xml", lambda xml: bare)
    # When it is read with warnings turned into errors, it reads
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, rows = _read(data)
    assert len(rows) == 2


def _report_sheet(header_row: int) -> list[list[Any]]:
    """An Excel report as CRMs export it: a title, a line of notes, blank rows, then the table."""
    above: list[list[Any]] = [["Customer export, 1 Dec 2026"], ["Generated by Zoho CRM for Brand Ltd"]]
    above += [[]] * (header_row - 1 - len(above))
    return [*above, *_shopify_rows()]


def test_title_rows_above_the_header_are_skipped_with_a_note_and_rows_keep_the_sheets_numbers() -> None:
    # Given a sheet whose header is row 4, under a title, a note and a blank row
    record_file, rows = _read(_workbook({"Customers": _report_sheet(header_row=4)}))
    # Then the header is found, the rows are numbered as Excel shows them, and the report says so
    assert record_file.columns == SHOPIFY_HEADER
    assert [(row.number, row.record is not None) for row in rows] == [(5, True), (6, True)]
    assert record_file.notes == [
        "the header is row 4: 2 rows above it (a title or notes) not read as customers; "
        "row numbers are the sheet's"
    ]


def test_a_sheet_whose_header_is_further_down_than_the_first_rows_is_still_refused() -> None:
    # Given a sheet whose table starts at row 12, past the rows a header is looked for in
    data = _workbook({"Customers": _report_sheet(header_row=xlsx.HEADER_WITHIN_ROWS + 2)})
    # Then it is refused with the first row's reason, as before
    assert "no column maps to firstName" in _unreadable(data)
