"""Inputs made to hurt: every one ends in rows and rejects with a reason, never a crash or a silent loss."""

from __future__ import annotations

import gzip

import pytest

from bik_sync.messages import MalformedMessage, parse_work_message
from bik_sync.records import Row, UnreadableFile
from bik_sync.records.csv_reader import MAX_CELL_CHARS, MAX_LINE_CHARS
from bik_sync.records.formats import open_records

from .conftest import OneWayStream, Reader

HEADER = b"First Name,Last Name,Email\n"
GOOD = b"A,B,a@example.in\n"
LAST = b"E,F,e@example.in\n"


def test_a_cell_over_the_csv_limit_on_one_line_rejects_its_row_and_reading_goes_on(read: Reader) -> None:
    # Given a file whose third row holds one cell longer than csv's limit, on a line of its own
    data = HEADER + GOOD + b'C,"' + b"x" * (MAX_CELL_CHARS + 10) + b'",c@example.in\n' + LAST
    # When it is read
    _, rows = read(data)
    # Then that row is a reject that says why, and the rows around it are read
    assert [(row.number, row.errors) for row in rows] == [
        (2, ()),
        (3, (f"a cell of the row is longer than {MAX_CELL_CHARS:,} characters",)),
        (4, ()),
    ]


def test_an_unclosed_quote_that_swallows_many_lines_still_stops_reading_where_it_starts(read: Reader) -> None:
    data = HEADER + b'A,"B,a@example.in\n' + GOOD * 20_000
    with pytest.raises(UnreadableFile, match=r"^malformed CSV at row 2: .*an unclosed quote\?"):
        read(data)


def test_a_line_longer_than_the_limit_is_read_in_pieces_and_rejected(read: Reader) -> None:
    # Given a row of one line longer than the limit, written with non-ASCII text
    data = HEADER + GOOD + b"C," + "é".encode() * (MAX_LINE_CHARS + 5) + b",c@example.in\n" + LAST
    # When it is read through a stream that hands out small pieces
    _, rows = read(data)
    # Then only that row is rejected, with the reason
    assert [(row.number, row.record is None) for row in rows] == [(2, False), (3, True), (4, False)]
    assert rows[1].errors == (f"the row is longer than {MAX_LINE_CHARS:,} characters: is it one record?",)
    assert rows[1].source == []


def test_nul_characters_after_the_sample_reject_their_row_and_never_reach_a_record(read: Reader) -> None:
    # Given NUL bytes far past the 64 KB that format detection looks at
    data = HEADER + GOOD * 7000 + b"C\x00\x00,D,c@example.in\n" + LAST
    _, rows = read(data)
    bad = [row for row in rows if row.errors]
    assert [(row.number, row.errors) for row in bad] == [
        (7002, ("the row holds NUL characters (binary data in a text file): remove them",))
    ]
    assert all("\x00" not in str(row.record) for row in rows)
    assert rows[-1].number == 7003 and rows[-1].record is not None


def test_a_nul_in_a_json_value_is_a_reject_of_that_record(read: Reader) -> None:
    data = (
        b'{"firstName":"A\\u0000","lastName":"B","email":"a@example.in"}\n'
        + b'{"firstName":"C","lastName":"D","email":"c@example.in"}\n'
    )
    _, rows = read(data, "x.jsonl")
    assert rows[0].record is None and rows[0].errors == ('"firstName" must not hold NUL characters',)
    assert rows[1].record is not None


def test_json_lines_nested_too_deep_or_with_a_huge_number_are_rejected_line_by_line(read: Reader) -> None:
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    huge = b'{"firstName":"A","lastName":"B","email":"a@example.in","id":' + b"1" * 5000 + b"}"
    data = deep + b"\n" + huge + b"\n" + b'{"firstName":"C","lastName":"D","email":"c@example.in"}\n'
    record_file, rows = read(data, "deep.jsonl")
    assert record_file.format == "jsonl"
    assert [(row.number, row.errors) for row in rows] == [
        (1, ("line 1 is not valid JSON here: it is nested too deep",)),
        (2, ("line 2 is not valid JSON here: it holds a number of more than 4,300 digits",)),
        (3, ()),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'[{"firstName":"' + b"x" * (MAX_LINE_CHARS + 10) + b'"}]', "larger than 1,048,576 characters"),
        (
            b'[{"firstName":"A"},'
            + b"[" * (MAX_LINE_CHARS // 2 + 10)
            + b"]" * (MAX_LINE_CHARS // 2 + 10)
            + b"]",
            "larger than 1,048,576 characters",
        ),
    ],
)
def test_a_json_document_that_cannot_be_read_on_says_why_after_the_rows_before(
    data: bytes, reason: str
) -> None:
    # Given a JSON array whose second element is larger than any record (decodable, or too deep to
    # decode), streamed in pieces
    record_file = open_records(OneWayStream(data, chunk=1 << 16), "x.json")  # type: ignore[arg-type]
    rows: list[Row] = []
    # When it is read, then the reason names what is wrong
    with pytest.raises(UnreadableFile, match=reason):
        rows.extend(record_file)


_PERSON = b'"firstName":"%s","lastName":"Rao","email":"%s@example.in"'
_ELEMENTS = [
    b"{" + _PERSON % (b"Asha", b"asha") + b"}",
    b"{" + _PERSON % (b"Ben", b"ben") + b',"id":' + b"1" * 100_000 + b"}",  # across 64 KB pieces
    b"{" + _PERSON % (b"Chitra", b"chitra") + b',"addresses":[{"zip":1},{"zip":-' + b"9" * 5000 + b"}]}",
    b'{"a":' * 50_000 + b'"x\\"]}"' + b"}" * 50_000,  # a string that holds an escaped quote and brackets
    b"{" + _PERSON % (b"Dev", b"dev") + b"}",
]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("people.json", b"[\n" + b",\n".join(_ELEMENTS) + b"\n]\n"),
        ("body.json.gz", gzip.compress(b'{"jobId":"j","userProperties":[' + b",".join(_ELEMENTS) + b"]}")),
    ],
    ids=["array", "gzip API body on one line"],
)
def test_a_json_documents_record_too_deep_or_with_a_number_too_long_is_its_reject_and_reading_goes_on(
    name: str, data: bytes
) -> None:
    # Given a JSON document whose second and third records hold an integer of more than 4,300
    # digits (at the top, and in a nested list) and whose fourth is nested too deep to decode
    record_file = open_records(OneWayStream(data, chunk=1 << 16), name)  # type: ignore[arg-type]
    # When it is read
    rows = list(record_file)
    # Then each of them is the reject of its record, with a reason naming the record (and the field),
    # and the records after them are read from the right place
    digits = "is not valid JSON here: it holds a number of more than 4,300 digits"
    assert record_file.format == "json"
    assert [(row.number, row.errors) for row in rows] == [
        (1, ()),
        (2, (f'record 2 {digits} (in "id")',)),
        (3, (f'record 3 {digits} (in "addresses[1].zip")',)),
        (4, ("record 4 is not valid JSON here: it is nested too deep",)),
        (5, ()),
    ]
    assert rows[4].record == {"firstName": "Dev", "lastName": "Rao", "email": "dev@example.in"}
    # And the rejects file gets the record with the number's place shown, not its digits
    assert rows[1].source["id"] == "(a number of 100,000 digits)"
    assert rows[2].source["addresses"] == [{"zip": 1}, {"zip": "(a number of 5,000 digits)"}]


def test_a_gzip_of_blank_lines_is_read_to_its_end(read: Reader) -> None:
    data = gzip.compress(HEADER + b"\n" * 500_000 + GOOD)
    _, rows = read(data)
    assert [row.number for row in rows] == [500_002]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('{"userProperties": [{"id": ' + "1" * 5000 + "}]}", "more than 4,300 digits"),
    ],
)
def test_a_work_message_too_deep_or_with_a_huge_number_is_malformed_not_a_crash(
    body: str, reason: str
) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_work_message(body)


def test_a_header_line_longer_than_the_limit_stops_with_that_reason_not_with_a_data_row_as_header(
    read: Reader,
) -> None:
    data = b"First Name,Last Name,Email," + b"X" * (MAX_LINE_CHARS + 10) + b"\nAsha,Verma,asha@example.in,1\n"
    with pytest.raises(UnreadableFile, match="the header row is longer than 1,048,576 characters"):
        read(data)
