"""Cells over several lines in narrow CSV files: a postal address with commas on each of its lines
is one row's cell, and a quote left open, which glues other people's rows into one cell, still stops
reading at its row. The files are written as spreadsheets and shop exports write them: a BOM, CRLF
at the rows' ends, LF inside quoted cells."""

from __future__ import annotations

import io

import pytest

from bik_sync.records import Row, UnreadableFile
from bik_sync.records.formats import open_records

BOM = b"\xef\xbb\xbf"
ASHA = (
    b'Asha Rao,asha@example.in,+919876543210,"Flat 4B, Prestige Towers,\n12 MG Road, Indiranagar,\n'
    b'Bengaluru, KA 560038"\r\n'
)
RAVI = b'Ravi Das,ravi@example.in,+919812345678,"4 Park Street,\nKolkata, WB"\r\n'
DEV = b"Dev Iyer,dev@example.in,+919000000001,Pune\r\n"
MEERA = b"Meera Nair,meera@example.in,+919000000002,Kochi\r\n"


def read_all(data: bytes) -> list[Row]:
    return list(open_records(io.BytesIO(data), "orders.csv"))


@pytest.mark.parametrize(
    ("header", "rows", "column", "addresses"),
    [
        # Excel / Google Sheets: cells quoted only where they need it, the address last
        (
            b"Name,Email,Phone,Address\r\n",
            ASHA + RAVI + DEV,
            3,
            [
                "Flat 4B, Prestige Towers,\n12 MG Road, Indiranagar,\nBengaluru, KA 560038",
                "4 Park Street,\nKolkata, WB",
                "Pune",
            ],
        ),
        # A shop export that quotes every cell, the address between the email and the phone
        (
            b'"Name","Email","Address","Phone"\r\n',
            b'"Asha Rao","asha@example.in","12 MG Road,\nIndiranagar,\nBengaluru, KA","+919876543210"\r\n'
            b'"Ravi Das","ravi@example.in","4 Park Street, Flat 2,\nKolkata, WB","+919812345678"\r\n'
            b'"Dev Iyer","dev@example.in","Pune","+919000000001"\r\n',
            2,
            ["12 MG Road,\nIndiranagar,\nBengaluru, KA", "4 Park Street, Flat 2,\nKolkata, WB", "Pune"],
        ),
    ],
    ids=["spreadsheet", "all-quoted-export"],
)
def test_addresses_with_commas_over_several_lines_in_a_narrow_file_are_read_whole(
    header: bytes, rows: bytes, column: int, addresses: list[str]
) -> None:
    # Given a 4-column file whose address cells span lines and hold commas on them
    # When it is read
    read = read_all(BOM + header + rows)
    # Then every row is read, numbered as the spreadsheet shows it, with its address as written
    assert [(row.number, row.errors) for row in read] == [(2, ()), (3, ()), (4, ())]
    assert [row.source[column] for row in read] == addresses
    assert [row.record["address1"] for row in read if row.record] == addresses


HEADER = BOM + b"Name,Email,Phone,Address\r\n"


@pytest.mark.parametrize(
    "rows",
    [
        # One row swallowed: the quote closes at the opening quote of the next row's address
        ASHA + b'Dev Iyer,dev@example.in,+919000000001,"Pune\r\n' + RAVI + MEERA,
        # One row swallowed, the quote closing right before a delimiter (a stray second quote)
        ASHA
        + b'Dev Iyer,"dev@example.in,+919000000001,Pune\r\nRavi Das,ravi@example.in",+919812345678,Kochi\r\n'
        + MEERA,
        # Two rows swallowed, closed before a delimiter in another column: a cell too many
        ASHA
        + b'Dev Iyer,dev@example.in,"+919000000001,Pune\r\n'
        + DEV.replace(b"Dev", b"Anil")
        + b"Ravi Das,5'10\",ravi@example.in,Kochi\r\n"
        + MEERA,
        # Several rows swallowed, up to a height in inches that closes the quote before a delimiter
        ASHA
        + b'Dev Iyer,dev@example.in,"+919000000001,Pune\r\n'
        + DEV.replace(b"Dev", b"Anil") * 3
        + b"Ravi Das,ravi@example.in,5'10\",Kochi\r\n"
        + MEERA,
        # The quote never closes: everything to the end of the file
        ASHA + b'Dev Iyer,dev@example.in,+919000000001,"Pune\r\n' + MEERA * 5,
    ],
    ids=[
        "one-row",
        "one-row-closed-before-a-delimiter",
        "two-rows-closed-in-another-column",
        "several-rows",
        "to-the-end",
    ],
)
def test_an_unclosed_quote_in_a_narrow_file_still_stops_reading_at_its_row(rows: bytes) -> None:
    # Given a file whose row 3 leaves a quote open, after a row with a real multi-line address
    record_file = open_records(io.BytesIO(HEADER + rows), "orders.csv")
    read: list[Row] = []
    # When it is read
    with pytest.raises(UnreadableFile) as info:
        read.extend(record_file)
    # Then the row before it is read whole, and the message names the row to fix, as the
    # spreadsheet numbers it, without repeating anyone's data
    assert [(row.number, row.errors) for row in read] == [(2, ())]
    message = str(info.value)
    assert message.startswith("unclosed quote in the row starting at row 3")
    for value in ("Dev", "Ravi", "example.in", "Pune", "9000000001"):
        assert value not in message
