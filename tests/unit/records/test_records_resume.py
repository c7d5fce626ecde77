"""Reading a plain CSV or JSON-lines file on from a byte offset: from any row boundary the reader
vouches for, the rest of the file gives exactly the rows a one-part read gives there (numbers,
records, rejects), in every encoding and line ending; compressed files and JSON documents offer none."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest

from bik_sync.records import RecordFile, ResumePoint
from bik_sync.records.formats import open_records, resume_records

Rows = list[tuple[int, Any, Any, tuple[str, ...]]]

CSV_LINES = [
    "First Name;Last Name;Email;Created At;Notes",
    'Asha;Verma;asha@example.in;25/03/2024;"two\r\nlines; one cell"',
    "Ravi;Rao;;01/02/2024;no email: a reject",
    "",
    "Rénu;Ünïcode;renu@example.in;02/03/2024;é 𝄞 ₹",
    'Dev;"Quoted ""Name""";dev@example.in;04/05/2024;"x\ny"',
    "Meera;Nair;meera@example;05/06/2024;bad email",
]


def as_rows(record_file: RecordFile) -> Rows:
    return [(r.number, r.source, r.record, r.errors) for r in record_file]


def points_between_rows(data: bytes, name: str) -> tuple[Rows, list[ResumePoint | None]]:
    """The rows of a one-part read, and the resume point before each row (and after the last)."""
    record_file = open_records(io.BytesIO(data), name)
    rows: Rows = []
    points = [record_file.resume_point()]
    for r in record_file:
        rows.append((r.number, r.source, r.record, r.errors))
        points.append(record_file.resume_point())
    return rows, points


def assert_every_part_reads_on_exactly(data: bytes, name: str) -> None:
    rows, points = points_between_rows(data, name)
    assert rows and all(point is not None for point in points)
    whole = open_records(io.BytesIO(data), name)
    as_rows(whole)
    for done, point in enumerate(points):
        assert point is not None
        # The point survives the job's item (JSON), and the bytes from its offset on are all it needs
        point = ResumePoint.from_dict(json.loads(json.dumps(point.to_dict())))
        rest = resume_records(io.BytesIO(data[point.offset :]), point)
        assert as_rows(rest) == rows[done:]
        assert (rest.format, rest.encoding, rest.delimiter) == (whole.format, whole.encoding, whole.delimiter)
        assert rest.ignored_columns == whole.ignored_columns


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [
        ("utf-8", "\n"),
        ("utf-8-sig", "\r\n"),  # BOM, CRLF, quoted CRLF inside a cell
        ("cp1252", "\r\n"),
        ("utf-16", "\r\n"),  # BOM, two or four bytes a character
        ("utf-16-be", "\n"),
    ],
)
def test_a_csv_read_on_from_any_row_boundary_gives_the_rows_of_a_one_part_read(
    encoding: str, newline: str
) -> None:
    # Given a semicolon CSV with quoted newlines, a blank line, rejects and non-ASCII text
    lines = [line.replace(" 𝄞 ₹", "") for line in CSV_LINES] if encoding == "cp1252" else CSV_LINES
    data = newline.join(lines * 4).encode(encoding)
    # When it is read on from the point the reader gives after each row
    # Then every part gives exactly the rows the one-part read gives from there
    assert_every_part_reads_on_exactly(data, "customers.csv")


def test_a_csv_with_stray_bytes_read_on_from_its_points_keeps_them_as_the_whole_read_does() -> None:
    # Given a UTF-8 file with a few cp1252 bytes (a pasted row) before and after the points
    data = "\r\n".join(CSV_LINES).encode() + b"\r\nJos\xe9;M\xfcller;jose@example.in;01/01/2024;\x93q\x94\r\n"
    # When / Then: the stray bytes read as cp1252 in every part, as in the one-part read
    assert_every_part_reads_on_exactly(data * 3, "customers.csv")


def test_the_date_order_the_file_start_decided_holds_in_a_later_part() -> None:
    # Given a file whose first rows write dates month first (03/25), and later rows that could be either
    lines = ["First Name,Last Name,Email,Created At", "A,B,a@example.in,03/25/2024"]
    lines += [f"N{i},L{i},p{i}@example.in,01/0{1 + i % 9}/2024" for i in range(5)]
    data = "\n".join(lines).encode()
    rows, points = points_between_rows(data, "dates.csv")
    # When the last rows are read on from a point, the file's start no longer in the bytes read
    point = points[3]
    assert point is not None and point.date_order == "month first"
    rest = as_rows(resume_records(io.BytesIO(data[point.offset :]), point))
    # Then 01/03/2024 is still 3 January, as the one-part read has it (not day first, as India writes)
    assert rest == rows[3:]
    assert rest[0][2]["createdAt"] == "2024-01-03"


@pytest.mark.parametrize(("encoding", "newline"), [("utf-8", "\n"), ("utf-16", "\r\n")])
def test_json_lines_read_on_from_any_line_boundary_give_the_rows_of_a_one_part_read(
    encoding: str, newline: str
) -> None:
    # Given JSON lines from another system (keys that map to nothing, listed as met), a blank line,
    # a line that is no JSON and a reject
    lines = [
        json.dumps(
            {"first_name": "Rénu", "last_name": f"L{i}", "email": f"p{i}@example.in", f"extra_{i % 4}": i}
        )
        for i in range(8)
    ]
    lines[3:3] = ["", "not json", json.dumps({"first_name": "No", "last_name": "Email"})]
    data = (newline.join(lines) + newline).encode(encoding)
    # When it is read on from the point after each line
    # Then every part gives the rows (by line number) and the ignored keys of the one-part read
    assert_every_part_reads_on_exactly(data, "people.jsonl")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "people.csv.gz",
            gzip.compress(b"First Name,Last Name,Email\nA,B,a@example.in\nC,D,c@example.in\n", mtime=0),
        ),
        (
            "people.json",
            b'[{"firstName": "A", "lastName": "B", "email": "a@example.in"},\n{"firstName": "C"}]',
        ),
    ],
)
def test_a_compressed_file_or_a_json_document_offers_no_offset(name: str, data: bytes) -> None:
    # Given a gzip (its bytes are not the text's) or a JSON array (a row is no line)
    rows, points = points_between_rows(data, name)
    # Then its reader offers no point to read on from: its parts skip rows instead
    assert len(rows) == 2
    assert points == [None, None, None]


def test_a_line_ending_in_a_lone_carriage_return_is_a_point_only_where_the_reader_can_vouch_for_it() -> None:
    # Given a file with old Mac line endings (CR alone): the newline decoder holds each CR back
    data = "\r".join(CSV_LINES * 2).encode()
    rows, points = points_between_rows(data, "mac.csv")
    # Then any point it gives reads on exactly, and the points it cannot vouch for are None, not guessed
    for done, point in enumerate(points):
        if point is not None:
            assert as_rows(resume_records(io.BytesIO(data[point.offset :]), point)) == rows[done:]
