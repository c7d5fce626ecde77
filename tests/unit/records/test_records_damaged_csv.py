"""Damaged CSV: the user is told where, and no customer's data is echoed in the message."""

from __future__ import annotations

import io

import pytest

from bik_sync.records import Row, UnreadableFile
from bik_sync.records.formats import open_records


def test_a_file_without_a_header_row_is_refused_without_echoing_its_first_customer() -> None:
    # Given an export saved without its header row
    body = b"Asha,Rao,+919876543210,asha.rao@example.com\nRavi,Kumar,+919812345678,ravi@example.com\n"
    # When it is opened
    with pytest.raises(UnreadableFile) as info:
        open_records(io.BytesIO(body), "customers.csv")
    # Then the message says what is wrong, and nothing of the customer
    message = str(info.value)
    assert "is the first row a header?" in message
    for value in ("Asha", "Rao", "9876543210", "asha.rao@example.com"):
        assert value not in message


def test_an_unclosed_quote_stops_reading_at_its_row_instead_of_swallowing_the_rest() -> None:
    # Given a file whose third record opens a quote it never closes
    body = (
        b"First Name,Last Name,Email\n"
        b"A,One,a1@example.in\n"
        b'B,"Two,b2@example.in\n'
        b"C,Three,c3@example.in\n"
        b"D,Four,d4@example.in\n"
    )
    record_file = open_records(io.BytesIO(body), "customers.csv")
    rows: list[Row] = []
    # When it is read
    with pytest.raises(UnreadableFile) as info:
        rows.extend(record_file)
    # Then the rows before it are kept, and the message names the row to fix
    assert [row.number for row in rows] == [2]
    assert "unclosed quote in the row starting at row 3" in str(info.value)
