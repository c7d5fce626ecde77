"""Formats, encodings and the exports real tools write: each is read into the same records."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from bik_sync.records import ReadOptions, Row, UnreadableFile
from bik_sync.records.errors import RefusedWhole
from bik_sync.records.formats import open_records

from .conftest import FIXTURES, OneWayStream, Reader


def test_shopify_current_layout_maps_every_column_that_has_an_api_field(read_fixture: Reader) -> None:
    # Given the current Shopify customers export (guard apostrophes on ids and phones)
    # When it is read
    record_file, rows = read_fixture("shopify_current.csv")
    # Then the first customer becomes a complete API record
    assert rows[0].number == 2
    assert rows[0].record == {
        "firstName": "Priya",
        "lastName": "Sharma",
        "phoneNumber": "+919876543210",
        "email": "priya.sharma@gmail.com",
        "address1": "14, MG Road",
        "address2": "Flat 3B",
        "city": "Bengaluru",
        "state": "KA",
        "country": "IN",
        "emailMarketingConsent": True,
        "smsMarketingConsent": False,
        "tags": ["vip", "repeat-buyer"],
        "partnerCustomerId": "7210448301122",
    }
    # And the columns without an API field are listed, not mapped
    assert record_file.ignored_columns == [
        "Default Address Company",
        "Default Address Zip",
        "Total Spent",
        "Total Orders",
        "Note",
        "Tax Exempt",
    ]


def test_shopify_default_address_phone_fills_a_missing_phone_and_phone_wins_otherwise(
    read_fixture: Reader,
) -> None:
    # Given Shopify rows where only the address phone, or only the customer phone, is set
    _, rows = read_fixture("shopify_current.csv")
    # Then the address phone fills the gap, and the customer phone is used where present
    assert rows[1].record is not None and rows[1].record["phoneNumber"] == "+918012345678"
    assert rows[2].errors == ('"lastName" is required',)


def test_shopify_row_without_last_name_is_rejected_with_the_api_message(read_fixture: Reader) -> None:
    _, rows = read_fixture("shopify_current.csv")
    assert rows[2].number == 4
    assert rows[2].record is None
    assert rows[2].errors == ('"lastName" is required',)


def test_shopify_old_layout_uses_province_name_and_the_rows_own_country_for_phones(
    read_fixture: Reader,
) -> None:
    # Given the older Shopify layout with an Indian and a US customer
    _, rows = read_fixture("shopify_old.csv")
    indian, american = (row.record for row in rows)
    # Then Province (name) wins over Province Code, Country over Country Code
    assert indian is not None and american is not None
    assert (indian["state"], indian["country"]) == ("Kerala", "India")
    assert indian["emailMarketingConsent"] is True
    assert indian["phoneNumber"] == "+919447012345"
    # And a US number is parsed with the row's own country, not the default region
    assert american["phoneNumber"] == "+14155552671"


def test_woocommerce_primary_columns_win_and_billing_columns_fill_gaps(read_fixture: Reader) -> None:
    _, rows = read_fixture("woocommerce.csv")
    first, second = (row.record for row in rows)
    assert first is not None and second is not None
    # user_email beats billing_email; a 0-prefixed mobile is normalised
    assert first["email"] == "meera@example.in"
    assert first["phoneNumber"] == "+919822012345"
    assert first["createdAt"] == "2023-04-11T14:32:10"
    assert first["partnerCustomerId"] == "101"
    # empty first_name/last_name/user_email are filled from the billing columns
    assert (second["firstName"], second["lastName"], second["email"]) == (
        "Rahul",
        "Singh",
        "rahul.singh@example.in",
    )
    assert second["createdAt"] == "2023-05-02T09:00:00"


def test_excel_csv_utf8_with_bom_and_crm_names(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("excel_csv_utf8.csv")
    assert (record_file.encoding, record_file.delimiter) == ("utf-8-sig", ",")
    assert record_file.columns[0] == "First Name"  # no BOM left in the header
    assert rows[0].record == {
        "firstName": "Zoë",
        "lastName": "D'Souza",
        "phoneNumber": "+919876501234",
        "email": "zoe.dsouza@example.in",
        "city": "Panaji",
    }
    assert rows[1].record is not None and rows[1].record["phoneNumber"] == "+919876512345"


def test_excel_cp1252_semicolon_file_is_decoded_as_cp1252(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("excel_cp1252_semicolon.csv")
    assert (record_file.encoding, record_file.delimiter) == ("cp1252", ";")
    assert rows[0].record is not None
    assert (rows[0].record["firstName"], rows[0].record["phoneNumber"]) == ("Renée", "+33612345678")
    assert rows[0].source[-1] == "£12,50"
    assert rows[1].record is not None and rows[1].record["lastName"] == "Ågård"


def test_excel_unicode_text_is_tab_delimited_utf16(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("excel_unicode_text.txt")
    assert (record_file.encoding, record_file.delimiter) == ("utf-16", "\t")
    assert rows[0].record is not None
    assert (rows[0].record["firstName"], rows[0].record["tags"]) == ("प्रिया", ["हिंदी", "vip"])
    assert rows[1].record is not None and rows[1].record["tags"] == ['quoted "tag"']


def test_pipe_delimited_file(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("pipe.csv")
    assert record_file.delimiter == "|"
    assert [row.record["firstName"] for row in rows if row.record] == ["Sneha", "Tanvi"]


def test_quoted_fields_with_commas_quotes_and_newlines_keep_spreadsheet_row_numbers(
    read_fixture: Reader,
) -> None:
    _, rows = read_fixture("multiline.csv")
    assert [row.number for row in rows] == [2, 3]
    assert rows[0].record is not None
    assert rows[0].record["address1"] == 'Flat 4, "Sunshine" Apartments\nBandra West'
    assert rows[0].source[4] == "line one\r\nline two"


@pytest.mark.parametrize("name", ["shopify_current.csv.gz", "records.jsonl.gz"])
def test_gzip_is_detected_by_magic_bytes_not_the_name(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    plain = open_records(io.BytesIO(gzip.decompress(data)), "plain")
    compressed = open_records(io.BytesIO(data), "no-extension")
    assert [row.record for row in compressed] == [row.record for row in plain]


def test_json_array_records_with_numbers_lists_and_unknown_keys(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("records.json")
    assert record_file.format == "json"
    assert [row.number for row in rows] == [1, 2, 3]
    assert rows[0].record == {
        "firstName": "Diya",
        "lastName": "Menon",
        "phoneNumber": "+919876543210",
        "emailMarketingConsent": True,
        "tags": ["vip", "diwali-sale"],
        "partnerCustomerId": "5001",
    }
    assert rows[1].record is not None
    assert (rows[1].record["email"], rows[1].record["createdAt"]) == ("varun.rao@example.in", "2024-03-05")
    assert rows[2].errors[0] == '"emial" is not allowed'
    assert rows[2].source == {"firstName": "Nikhil", "lastName": "Das", "emial": "nikhil@example.in"}


def test_api_body_object_reads_its_user_properties(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("api_body.json")
    assert record_file.format == "json"
    assert [row.record is not None for row in rows] == [True, True, False]


def test_json_lines_number_rows_by_line(read_fixture: Reader) -> None:
    record_file, rows = read_fixture("records.jsonl")
    assert record_file.format == "jsonl"
    assert [row.number for row in rows] == [1, 2, 3]


def test_a_non_seekable_stream_is_read_a_few_bytes_at_a_time() -> None:
    data = (FIXTURES / "shopify_current.csv.gz").read_bytes()
    record_file = open_records(OneWayStream(data), "export.csv.gz")  # type: ignore[arg-type]
    assert [row.number for row in record_file] == [2, 3, 4]


def test_a_short_row_is_padded_and_a_long_one_is_a_reject(read: Reader) -> None:
    _, rows = read(
        b"First Name,Last Name,Email,City\nA,B,a@example.in\nC,D\nE,F,e@example.in,Pune,extra\n"
        b"G,H,g@example.in,Pune,,\n"
    )
    assert [row.errors for row in rows] == [
        (),  # short by one cell: padded, as every spreadsheet reads it
        ("needs at least one of phoneNumber, email or partnerCustomerId",),
        ("the row has 5 cells, the header has 4",),  # its data is shifted: no guess puts it back
        (),  # extra cells that are all empty (trailing delimiters) carry nothing
    ]
    assert rows[0].record == {"firstName": "A", "lastName": "B", "email": "a@example.in"}


def test_blank_lines_and_empty_rows_are_skipped_but_keep_row_numbers(read: Reader) -> None:
    _, rows = read(b"First Name,Last Name,Email\r\n\r\n,,\r\nA,B,a@example.in\r\n")
    assert [(row.number, row.record is not None) for row in rows] == [(4, True)]


def test_excel_sep_line_sets_the_delimiter(read: Reader) -> None:
    record_file, rows = read(b"sep=;\nFirst Name;Last Name;Email\nA;B;a@example.in\n")
    assert record_file.delimiter == ";"
    assert rows[0].record == {"firstName": "A", "lastName": "B", "email": "a@example.in"}


def test_a_utf8_file_with_stray_cp1252_bytes_later_on_still_reads() -> None:
    # Given a UTF-8 file whose first 64 KiB are plain ASCII and a later cell is cp1252 ("é")
    filler = b"".join(b"A%d,B,a%d@example.in\n" % (i, i) for i in range(5000))
    data = b"First Name,Last Name,Email\n" + filler + b"Ren\xe9e,D,r@example.in\n"
    rows = list(open_records(io.BytesIO(data), "mixed.csv"))
    assert rows[-1].record is not None and rows[-1].record["firstName"] == "Renée"


def test_a_large_json_array_is_parsed_across_chunk_boundaries() -> None:
    records = [{"firstName": f"N{i}", "lastName": "X", "partnerCustomerId": i} for i in range(6000)]
    rows = list(open_records(io.BytesIO(json.dumps(records).encode()), "big.json"))
    assert len(rows) == 6000
    assert rows[-1].record == {"firstName": "N5999", "lastName": "X", "partnerCustomerId": "5999"}


def test_a_garbled_json_line_is_a_reject_and_the_rest_goes_on(read: Reader) -> None:
    data = (
        b'{"firstName":"A","lastName":"B","email":"a@example.in"}\n'
        b'{"firstName": oops}\n'
        b'{"firstName":"C","lastName":"D","email":"c@example.in"}\n'
    )
    _, rows = read(data, "x.jsonl")
    assert [row.record is not None for row in rows] == [True, False, True]
    assert rows[1].errors[0].startswith("line 2 is not valid JSON")
    assert rows[1].source == '{"firstName": oops}'


def test_json_element_that_is_not_an_object_is_rejected_like_the_api(read: Reader) -> None:
    _, rows = read(b'[42, {"firstName":"A","lastName":"B","email":"a@example.in"}]', "x.json")
    assert rows[0].errors == ('"value" must be of type object',)
    assert rows[1].errors == ()


def test_format_option_overrides_detection(read: Reader) -> None:
    record_file, rows = read(
        b'{"firstName":"A","lastName":"B","email":"a@example.in"}\n', "x.json", format="jsonl"
    )
    assert record_file.format == "jsonl"
    assert rows[0].record is not None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \r\n", "the file holds only blank lines"),
        (b"\xef\xbb\xbf", "the file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook (.xlsx)"),
        (b"\x00\x01\x02\x03binary\x00\xff" * 50, "binary"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", "gzip"),
        (b"Nom,Mobile\nAsha,9811122233\n", "no column maps to firstName or lastName"),
        (b"Email,Last Name\na@example.in,B\n", "no column maps to firstName"),
    ],
)
def test_unreadable_files_say_why_in_one_line(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile) as caught:
        list(open_records(io.BytesIO(data), "upload.csv"))
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_truncated_json_says_where_after_yielding_the_complete_rows() -> None:
    # Given a pretty-printed array cut short inside its last element
    data = (FIXTURES / "truncated.json").read_bytes()
    rows: list[Row] = []
    # When it is read
    with pytest.raises(UnreadableFile) as caught:
        rows.extend(open_records(io.BytesIO(data), "truncated.json"))
    # Then the rows before the cut were yielded, and the error says where the data ends
    assert [row.number for row in rows] == [1, 2]
    text = data.decode().rstrip()
    last_line, last_column = text.count("\n") + 1, len(text) - text.rfind("\n")
    assert str(caught.value) == f"truncated JSON at line {last_line}, column {last_column}"


def test_truncated_last_json_line_is_unreadable_with_its_line_number() -> None:
    data = b'{"firstName":"A","lastName":"B","email":"a@example.in"}\n{"firstName":"C","las'
    record_file = open_records(io.BytesIO(data), "x.jsonl")
    rows = iter(record_file)
    assert next(rows).record is not None
    with pytest.raises(UnreadableFile, match=r"truncated JSON at line 2, column 22"):
        next(rows)


def test_truncated_gzip_is_unreadable_mid_way() -> None:
    body = b"First Name,Last Name,Email\n" + b"".join(
        b"A%d,B,a%d@example.in\n" % (i, i * 7919) for i in range(20000)
    )
    whole = gzip.compress(body)
    data = whole[: len(whole) // 2]
    with pytest.raises(UnreadableFile, match="truncated gzip"):
        list(open_records(io.BytesIO(data), "x.csv.gz"))


def test_json_with_garbage_after_the_document_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match=r"invalid JSON at line 1, column 59"):
        list(
            open_records(io.BytesIO(b'[{"firstName":"A","lastName":"B","email":"a@example.in"}] x'), "x.json")
        )


def test_a_record_file_can_be_iterated_only_once(read: Reader) -> None:
    record_file = open_records(io.BytesIO(b"First Name,Last Name\nA,B\n"), "x.csv", ReadOptions())
    list(record_file)
    with pytest.raises(RuntimeError):
        list(record_file)


# A CRM's list API with a side-loaded resource (Freshsales: "include=owner"): the contacts, and the
# CRM's own users who own them. Both are lists under names that wrap records elsewhere.
CRM_WITH_OWNERS = {
    "contacts": [
        {"id": 1, "first_name": "Asha", "last_name": "Rao", "email": "asha@example.in", "owner_id": 7},
        {"id": 2, "first_name": "Ravi", "last_name": "Kumar", "email": "ravi@example.in", "owner_id": 7},
    ],
    "users": [{"id": 7, "display_name": "Sales Rep", "email": "rep@brand.example"}],
    "meta": {"total_pages": 1, "total": 2},
}


def test_an_object_with_two_lists_of_records_is_refused_whole_naming_both(read: Reader) -> None:
    # Given a CRM export holding its contacts and its own users, each a list of records
    data = json.dumps(CRM_WITH_OWNERS, indent=2).encode()
    # When it is read, then it is refused, with both lists named and how to choose one
    with pytest.raises(RefusedWhole, match='two lists of records, under "contacts" and "users"') as refused:
        read(data, "contacts.json")
    assert "jq '.contacts' file.json" in str(refused.value)


@pytest.mark.parametrize("contacts_first", [True, False])
def test_a_list_of_records_wrapped_in_a_member_beside_a_list_at_the_top_is_a_second_list(
    read: Reader, contacts_first: bool
) -> None:
    # Given the CRM export with its contacts one level down ({"data": {"contacts": [...]}}), before
    # or after its own users' list at the top
    members = [("data", {"contacts": CRM_WITH_OWNERS["contacts"]}), ("users", CRM_WITH_OWNERS["users"])]
    data = json.dumps(dict(members if contacts_first else members[::-1])).encode()
    # When it is read, then it is refused naming both lists, as two lists side by side are: reading
    # the users and noting "data" as not read would send the CRM's sales people as its customers
    first, second = ("data.contacts", "users") if contacts_first else ("users", "data.contacts")
    with pytest.raises(RefusedWhole, match=f'two lists of records, under "{first}" and "{second}"'):
        read(data, "contacts.json")


def test_an_object_whose_records_are_one_list_names_what_else_it_held_as_not_read(read: Reader) -> None:
    # Given a JSON:API style answer: the people under "data", related resources under "included"
    data = json.dumps(
        {
            "data": [{"first_name": "Asha", "last_name": "Rao", "email": "asha@example.in"}],
            "included": [{"type": "list", "id": "Y6nRLr"}, {"type": "list", "id": "Xk2"}],
            "links": {"next": None},
        }
    ).encode()
    # When it is read
    record_file, rows = read(data, "profiles.json")
    # Then the one list is the records, and the report's note names the rest as not read
    assert [row.record is not None for row in rows] == [True]
    assert record_file.notes == [
        'records read from the list under "data"; not read: "included" (a list of 2), "links"'
    ]


def test_an_empty_list_of_records_beside_a_full_one_is_no_second_list(read: Reader) -> None:
    # Given an export whose "customers" list is empty and whose "contacts" hold the people
    data = json.dumps({"customers": [], "contacts": CRM_WITH_OWNERS["contacts"]}).encode()
    # When it is read, then the contacts are the records and the empty list is named as not read
    record_file, rows = read(data, "x.json")
    assert [row.number for row in rows] == [1, 2]
    assert record_file.notes == [
        'records read from the list under "contacts"; not read: "customers" (a list of 0)'
    ]
