"""Rejects files: shaped like the input, guarded against formulas, and uploadable again."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bik_sync.records import JsonlRejectsWriter, RejectsWriter, guard_cell
from bik_sync.records.formats import open_records
from bik_sync.records.normalise import PLACEHOLDERS

from .conftest import Reader, read_bytes


def _rejects_of(data: bytes, name: str = "customers.csv") -> tuple[bytes, RejectsWriter]:
    record_file = open_records(io.BytesIO(data), name)
    out = io.BytesIO()
    writer = RejectsWriter(out, record_file)
    for row in record_file:
        if row.errors:
            writer.write(row)
    return out.getvalue(), writer


def test_csv_rejects_keep_the_input_columns_delimiter_and_add_row_and_error() -> None:
    # Given a semicolon CSV with one bad row
    data = b"First Name;Last Name;Email;Zip\nA;B;a@example.in;1\nC;;c@example.in;2\n"
    # When its rejects are written
    written, writer = _rejects_of(data)
    # Then they are a UTF-8 CSV with a BOM, the same delimiter, the original columns, _row and _error
    assert written.startswith(b"\xef\xbb\xbf")
    assert written.decode("utf-8-sig").splitlines() == [
        "First Name;Last Name;Email;Zip;_row;_error",
        'C;;c@example.in;2;3;"""lastName"" is required"',
    ]
    assert (writer.count, writer.extension, writer.content_type) == (1, ".csv", "text/csv; charset=utf-8")


def test_formula_cells_are_guarded_and_the_reader_strips_the_guard_again(read: Reader) -> None:
    data = b'First Name,Last Name,Email\n=cmd|calc,B,"=HYPERLINK(""http://x"")"\n'
    written, _ = _rejects_of(data)
    assert '\'=cmd|calc,B,"\'=HYPERLINK(""http://x"")"' in written.decode("utf-8-sig")
    _, rows = read(written)
    assert rows[0].source[:3] == ["=cmd|calc", "B", '=HYPERLINK("http://x")']


def test_guard_cell_covers_formula_starts_apostrophes_and_long_digit_strings() -> None:
    for cell in ["=1+1", "+91", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted", "7210448301122"]:
        assert guard_cell(cell) == "'" + cell
    for cell in ["Priya", "O'Brien", "560001", ""]:
        assert guard_cell(cell) == cell


def test_a_rejects_file_fixed_and_uploaded_again_goes_in(read: Reader) -> None:
    # Given the rejects of a Shopify-style file
    written, _ = _rejects_of(b"Customer ID,First Name,Last Name,Phone\n'7210448301122,Asha,,'+919811122233\n")
    # When the user fills in the last name and uploads the file again
    fixed = written.decode("utf-8-sig").replace("Asha,,", "Asha,Verma,").encode("utf-8-sig")
    record_file, rows = read(fixed)
    # Then the row is valid, the bookkeeping columns are not reported as ignored
    assert rows[0].record == {
        "firstName": "Asha",
        "lastName": "Verma",
        "phoneNumber": "+919811122233",
        "partnerCustomerId": "7210448301122",
    }
    assert record_file.ignored_columns == []


def test_rows_with_the_wrong_number_of_cells_are_written_without_losing_cells() -> None:
    written, _ = _rejects_of(b"First Name,Last Name,Email\nA,B\nC,D,c@example.in,extra\n")
    lines = list(csv.reader(io.StringIO(written.decode("utf-8-sig"))))
    assert lines[1][:5] == [
        "A",
        "B",
        "",
        "2",
        "needs at least one of phoneNumber, email or partnerCustomerId",
    ]
    assert lines[2][:4] == ["C", "D", "c@example.in", "extra"]


def test_a_given_error_replaces_the_rows_own_errors() -> None:
    record_file = open_records(io.BytesIO(b"First Name,Last Name,Email\nA,B,a@example.in\n"), "x.csv")
    out = io.BytesIO()
    writer = RejectsWriter(out, record_file)
    writer.write(next(iter(record_file)), "BIK: docsFailedToUpdate")
    assert out.getvalue().decode("utf-8-sig").splitlines()[1] == "A,B,a@example.in,2,BIK: docsFailedToUpdate"


def test_json_input_gets_json_lines_rejects_with_the_original_object() -> None:
    data = (
        b'[{"firstName":"A","emial":"a@example.in"}, "text",'
        b' {"firstName":"B","lastName":"C","email":"b@example.in"}]'
    )
    written, writer = _rejects_of(data, "x.json")
    lines = [json.loads(line) for line in written.decode().splitlines()]
    assert (writer.extension, writer.content_type) == (".jsonl", "application/x-ndjson")
    assert lines[0] == {
        "firstName": "A",
        "emial": "a@example.in",
        "_row": 1,
        "_error": '"lastName" is required; "emial" is not allowed; '
        "needs at least one of phoneNumber, email or partnerCustomerId",
    }
    assert lines[1] == {"_raw": "text", "_row": 2, "_error": '"value" must be of type object'}


def test_api_rejects_are_json_lines_that_read_back_as_records() -> None:
    out = io.BytesIO()
    writer = JsonlRejectsWriter(out)
    writer.write(7, {"firstName": "A", "lastName": "B", "email": "a@example.in"}, "BIK: duplicate phone")
    writer.write(
        None, {"firstName": "C", "lastName": "D", "phoneNumber": "+919811122233"}, "BIK: 500 after 5 tries"
    )
    assert writer.count == 2
    assert json.loads(out.getvalue().decode().splitlines()[0])["_error"] == "BIK: duplicate phone"
    _, rows = read_bytes(out.getvalue(), "failed.jsonl")
    assert [row.record for row in rows] == [
        {"firstName": "A", "lastName": "B", "email": "a@example.in"},
        {"firstName": "C", "lastName": "D", "phoneNumber": "+919811122233"},
    ]


# --- properties ---------------------------------------------------------------------------------

CELL_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(["\n", "\r", "\t", '"', "'", "=", "+", "-", "@", ",", ";", "|", " "]),
    ),
    max_size=12,
)


def _csv(rows: list[list[str]], delimiter: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    cells=st.lists(st.lists(CELL_TEXT, min_size=4, max_size=4), min_size=1, max_size=6),
)
def test_rejects_read_back_with_the_same_source_values(delimiter: str, cells: list[list[str]]) -> None:
    # Given any cell text in a CSV with any Excel delimiter
    data = _csv([["First Name", "Last Name", "Email", "Note"], *cells], delimiter)
    record_file, rows = read_bytes(data)
    # When every row is written to a rejects file and that file is read again
    out = io.BytesIO()
    writer = RejectsWriter(out, record_file)
    for row in rows:
        writer.write(row, "rejected for the test")
    again_file, again = read_bytes(out.getvalue())
    # Then every row comes back with the same source cells, its row number and the error
    assert again_file.delimiter == delimiter
    assert [row.source[:4] for row in again] == [row.source for row in rows]
    assert [row.source[4:] for row in again] == [[str(row.number), "rejected for the test"] for row in rows]
    assert [row.record for row in again] == [row.record for row in rows]


@settings(max_examples=40, deadline=None)
@given(first=CELL_TEXT, note=CELL_TEXT)
def test_the_reader_returns_any_field_text_as_written(first: str, note: str) -> None:
    # Given any text in a name and an ignored column, as csv.writer writes it
    data = _csv([["First Name", "Last Name", "Email", "Note"], [first, "Verma", "a@example.in", note]], ",")
    _, rows = read_bytes(data)
    # Then the cells come back as written (one leading guard apostrophe aside)

    def unguard(text: str) -> str:
        return text[1:] if text.startswith("'") else text

    if not rows:  # only a row of empty cells is skipped, and this one has a last name
        raise AssertionError("row lost")
    assert rows[0].source == [unguard(first), "Verma", "a@example.in", unguard(note)]
    expected_first = unguard(first).strip()
    expected_first = (expected_first[1:] if expected_first.startswith("'") else expected_first).strip()
    if expected_first in PLACEHOLDERS:  # "null", "N/A", "-"... mean "nothing"
        expected_first = ""
    if expected_first:
        assert rows[0].record is not None and rows[0].record["firstName"] == expected_first
    else:
        assert rows[0].errors == ('"firstName" is required',)


@settings(max_examples=30, deadline=None)
@given(
    records=st.lists(
        st.dictionaries(
            st.sampled_from(["firstName", "lastName", "email", "city", "tag"]), CELL_TEXT, max_size=5
        ),
        min_size=1,
        max_size=5,
    )
)
def test_json_rejects_read_back_with_the_same_objects(records: list[dict[str, str]]) -> None:
    record_file, rows = read_bytes(json.dumps(records).encode(), "x.json")
    out = io.BytesIO()
    writer = RejectsWriter(out, record_file)
    for row in rows:
        writer.write(row)
    _, again = read_bytes(out.getvalue(), "rejects.jsonl")
    assert [{k: v for k, v in row.source.items() if not k.startswith("_")} for row in again] == records
    assert [row.errors for row in again] == [row.errors for row in rows]


def test_a_json_reject_holding_a_lone_surrogate_is_written_as_its_escape_and_reads_back() -> None:
    out = io.BytesIO()
    JsonlRejectsWriter(out).write(3, {"firstName": "A\ud800"}, "bad text")
    line = out.getvalue()
    assert b"\\ud800" in line
    assert json.loads(line) == {"firstName": "A\ud800", "_row": 3, "_error": "bad text"}
