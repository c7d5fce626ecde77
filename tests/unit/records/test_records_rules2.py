"""Issue 8's rules, each with the inputs that must fire it and the look-alikes that must not."""

from __future__ import annotations

from typing import Any

import pytest

from bik_sync.records import check_record

from .conftest import Reader

VALID = {"firstName": "Asha", "lastName": "Verma", "email": "asha@example.in"}

# --- nested JSON ------------------------------------------------------------------------------


def test_shopify_admin_api_consent_objects_are_read_from_their_state() -> None:
    # Given a Shopify Admin API customer, whose consents are objects under the API's snake_case names
    customer: dict[str, Any] = {
        "id": 7210448301122,
        "first_name": "Asha",
        "last_name": "Verma",
        "phone": "+919811122233",
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
        "sms_marketing_consent": {"state": "not_subscribed", "consent_collected_from": "OTHER"},
    }
    # When it is checked
    record, errors = check_record(customer)
    # Then each consent is its state, not "must be a boolean"
    assert errors == ()
    assert record is not None
    assert (record["emailMarketingConsent"], record["smsMarketingConsent"]) == (True, False)


def test_an_object_under_an_api_field_that_holds_nothing_mappable_is_still_a_wrong_type() -> None:
    assert check_record({"firstName": "A", "lastName": "B", "email": "a@b.in", "tags": {"a": 1}}) == (
        None,
        ('"tags" must be an array',),
    )


# --- Excel's scientific notation ------------------------------------------------------------


@pytest.mark.parametrize("raw", ["7.02255E+12", "7,02255E+12", "7E+12", "'7.02255E+12", "7.02255e12"])
def test_excel_scientific_notation_in_an_id_is_a_reject_saying_so(raw: str) -> None:
    # Given a customer id that Excel rewrote (it always writes the sign, or a decimal point)
    _, errors = check_record({**VALID, "partnerCustomerId": raw})
    # Then the row is rejected, never sent rounded
    assert len(errors) == 1
    assert errors[0].startswith('"partnerCustomerId" is in scientific notation')
    assert "Excel turned the number into scientific notation" in errors[0]


@pytest.mark.parametrize("raw", ["12E45", "650000000000000000e00001", "003E000001"])
def test_an_identifier_with_one_e_between_digits_is_not_excels_notation(raw: str) -> None:
    # Given ids as systems mint them (a product-style code, a Ghost/Mongo hex id): Excel never writes these
    record, errors = check_record({**VALID, "partnerCustomerId": raw})
    # Then they are kept as written
    assert errors == ()
    assert record is not None and record["partnerCustomerId"] == raw


# --- tags ---------------------------------------------------------------------------------------


def test_mailchimp_tags_written_as_quoted_names_lose_their_quotes() -> None:
    # Given Mailchimp's TAGS cell, each tag in double quotes
    record, errors = check_record({**VALID, "TAGS": '"Customer","VIP", "Diwali Sale"'})
    # Then the tags are the names
    assert errors == ()
    assert record is not None and record["tags"] == ["Customer", "VIP", "Diwali Sale"]


# --- dates as tools write them --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05 10:20:30 UTC", "2024-03-05T10:20:30+00:00"),  # Ruby's Time#to_s (Chatwoot)
        ("3/25/2024, 10:20 AM", "2024-03-25T10:20:00"),  # Salesforce Lightning report, en_US
        ("2024-03-05 10:20:30", "2024-03-05T10:20:30"),  # Mailchimp OPTIN_TIME
        ("2024-03-05T10:20:30.000Z", "2024-03-05T10:20:30+00:00"),  # Ghost created_at
    ],
)
def test_dates_as_crms_write_them_become_iso_8601(raw: str, expected: str) -> None:
    record, errors = check_record({**VALID, "createdAt": raw})
    assert errors == ()
    assert record is not None and record["createdAt"] == expected


# --- placeholders, and the look-alikes that are real values -------------------------------


def test_na_in_a_country_column_is_namibia_and_decides_the_phone(read: Reader) -> None:
    # Given a row whose Country is "NA" and whose phone is a Namibian national number
    _, rows = read(b"First Name,Last Name,Phone,Country\nAsha,Verma,081 123 4567,NA\n")
    # Then NA is Namibia (+264), not "not available" (which would make it Indian)
    assert rows[0].record == {
        "firstName": "Asha",
        "lastName": "Verma",
        "phoneNumber": "+264811234567",
        "country": "NA",
    }


@pytest.mark.parametrize("placeholder", ["null", "NULL", "-", "--", "N/A", "n/a", "none", "#N/A", "(blank)"])
def test_whole_cell_placeholders_are_empty_cells(read: Reader, placeholder: str) -> None:
    data = (
        f"First Name,Last Name,Email,City,Country\nAsha,Verma,asha@example.in,{placeholder},{placeholder}\n"
    )
    _, rows = read(data.encode())
    assert rows[0].record == {"firstName": "Asha", "lastName": "Verma", "email": "asha@example.in"}


def test_a_dash_inside_an_address_and_names_like_nil_are_real_values(read: Reader) -> None:
    _, rows = read(b"Name,Email,Address1\nNil Na,nil@example.in,12-B MG Road\nNa Yeon Kim,na@example.kr,-\n")
    assert [row.record for row in rows] == [
        {"firstName": "Nil", "lastName": "Na", "email": "nil@example.in", "address1": "12-B MG Road"},
        {"firstName": "Na Yeon", "lastName": "Kim", "email": "na@example.kr"},
    ]


# --- rows and headers -----------------------------------------------------------------------


def test_a_short_row_is_padded_and_a_long_one_is_rejected_unless_its_extra_cells_are_empty(
    read: Reader,
) -> None:
    _, rows = read(
        b"First Name,Last Name,Email,City\nAsha,Verma,asha@example.in\nA,B,a@b.in,Pune,,\nC,D,c@d.in,Pune,x\n"
    )
    assert [row.record for row in rows[:2]] == [
        {"firstName": "Asha", "lastName": "Verma", "email": "asha@example.in"},
        {"firstName": "A", "lastName": "B", "email": "a@b.in", "city": "Pune"},
    ]
    assert rows[2].errors == ("the row has 5 cells, the header has 4",)


def test_a_repeated_header_maps_once_and_the_later_one_is_listed_by_position(read: Reader) -> None:
    record_file, rows = read(
        b"First Name,Last Name,Email,Email\nAsha,Verma,asha@example.in,other@example.in\n"
    )
    assert record_file.ignored_columns == ["Email (column 4)"]
    assert rows[0].record == {"firstName": "Asha", "lastName": "Verma", "email": "asha@example.in"}


def test_a_one_word_name_is_a_reject_that_says_so(read: Reader) -> None:
    _, rows = read(b"Full Name,Email\nMadonna,m@example.in\n")
    assert rows[0].errors == (
        '"lastName" is required ("Full Name" has one word: give the name as first and last name)',
    )


# --- phones and countries -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "phone", "expected"),
    [
        ("United States of Ame", "(415) 555-2671", "+14155552671"),  # cut at 20 characters
        ("U.S.A.", "(415) 555-2671", "+14155552671"),
        ("usa", "(415) 555-2671", "+14155552671"),
        ("THA", "081 234 5678", "+66812345678"),
        ("  thailand ", "081 234 5678", "+66812345678"),
        ("Côte d'Ivoire", "01 23 45 67 89", "+2250123456789"),
        ("Korea, Republic of", "010-1234-5678", "+821012345678"),
        ("UK", "07911 123456", "+447911123456"),
        ("", "98111 22233", "+919811122233"),  # no country: the default region
        ("N/A", "98111 22233", "+919811122233"),
    ],
)
def test_a_national_phone_takes_its_rows_country_in_any_form(country: str, phone: str, expected: str) -> None:
    record, errors = check_record({**VALID, "Mobile": phone, "Country": country})
    assert errors == ()
    assert record is not None and record["phoneNumber"] == expected


def test_an_unknown_country_rejects_a_national_phone_but_not_one_with_its_code() -> None:
    _, errors = check_record({**VALID, "Phone 1 - Value": "081 234 5678", "Address 1 - Country": "Siam"})
    assert errors == (
        '"phoneNumber" (from "Phone 1 - Value") has no country code and the row\'s country "Siam" is not '
        "a country we recognise: write the number with its country code (+44...) or the country as a name "
        "or ISO code",
    )
    record, errors = check_record(
        {**VALID, "Phone 1 - Value": "+66 81 234 5678", "Address 1 - Country": "Siam"}
    )
    assert errors == () and record is not None and record["phoneNumber"] == "+66812345678"


def test_a_second_valid_phone_is_the_alternate_and_an_invalid_one_is_skipped(read: Reader) -> None:
    _, rows = read(
        b"First Name,Last Name,Phone,Default Address Phone\nA,B,9811122233,022 2345 6789\nC,D,9811122233,12\n"
    )
    assert rows[0].record is not None and rows[0].record["alternatePhoneNumber"] == "+912223456789"
    assert rows[1].record == {"firstName": "C", "lastName": "D", "phoneNumber": "+919811122233"}


# --- dates: the file's order, or the row's country's -----------------------------------------


def test_a_file_that_writes_dates_day_first_rejects_a_month_first_value(read: Reader) -> None:
    # Given a file whose first rows write dates day first, and a month-first date far below them
    later = "".join(f"P{n},Q,p{n}@q.in,\r\n" for n in range(2100))
    header = "First Name,Last Name,Email,Created Date\r\n"
    data = f"{header}A,B,a@b.in,25/12/2024\r\n{later}C,D,c@d.in,12/25/2024\r\n"
    # When it is read
    _, rows = read(data.encode())
    # Then the first is 25 December, and the later one is rejected, never read month first
    assert rows[0].record is not None and rows[0].record["createdAt"] == "2024-12-25"
    assert rows[-1].errors == (
        '"createdAt" (from "Created Date") must be a valid date (this file writes dates day first, '
        "as in 25/12/2024)",
    )


def test_a_file_whose_first_rows_show_both_orders_guesses_no_date_that_could_be_either(read: Reader) -> None:
    # Given both orders in the first rows: each value that can be read one way only is read so,
    # and a date that could be either is a reject, never a guess
    _, rows = read(
        b"First Name,Last Name,Email,Created Date\nA,B,a@b.in,25/12/2024\nC,D,c@d.in,12/25/2024\n"
        b"E,F,e@f.in,05/03/2024\n"
    )
    assert [row.record["createdAt"] for row in rows if row.record] == ["2024-12-25", "2024-12-25"]
    assert rows[2].errors == (
        '"createdAt" (from "Created Date") must be a valid date (this file writes dates both day first '
        "and month first, so one like 05/03/2024 could be either: write it as 2024-03-05)",
    )


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Verma, Asha", "Asha", "Verma"),
        ("Asha Rani Verma", "Asha Rani", "Verma"),
        ("Na Yeon Kim", "Na Yeon", "Kim"),
    ],
)
def test_a_whole_name_is_split_last_word_last_or_at_its_comma(full: str, first: str, last: str) -> None:
    record, errors = check_record({"Name": full, "email": "a@b.in"})
    assert errors == () and record is not None
    assert (record["firstName"], record["lastName"]) == (first, last)


def test_na_written_as_a_name_stays_a_name_but_na_or_n_a_in_capitals_is_empty(read: Reader) -> None:
    _, rows = read(b"First Name,Last Name,Email\nNa,Kim,a@b.in\nNA,Kim,b@b.in\n")
    assert rows[0].record is not None and rows[0].record["firstName"] == "Na"
    assert rows[1].errors == ('"firstName" is required',)


@pytest.mark.parametrize(
    ("country", "phone", "expected"),
    [
        ("Brasil", "(11) 91234-5678", "+5511912345678"),
        ("España", "612 34 56 78", "+34612345678"),
        ("Deutschland", "0151 23456789", "+4915123456789"),
        ("The Gambia", "301 2345", "+2203012345"),
        ("St. Lucia", "(758) 284-5678", "+17582845678"),
    ],
)
def test_countries_written_in_their_own_language_or_with_the_and_st_decide_the_phone(
    country: str, phone: str, expected: str
) -> None:
    record, errors = check_record({**VALID, "Country": country, "Phone": phone})
    assert errors == () and record is not None
    assert record["phoneNumber"] == expected


def test_googles_own_all_contacts_group_is_not_a_tag() -> None:
    record, _ = check_record({**VALID, "Labels": "* myContacts ::: VIP"})
    assert record is not None and record["tags"] == ["VIP"]


def test_an_undecided_file_reads_dates_by_each_rows_country(read: Reader) -> None:
    _, rows = read(
        b"First Name,Last Name,Email,Created Date,Country\nA,B,a@b.in,4/5/24 1:51 PM,US\n"
        b"C,D,c@d.in,4/5/24,India\nE,F,e@f.in,4/5/09,\n"
    )
    assert [row.record["createdAt"] for row in rows if row.record] == [
        "2024-04-05T13:51:00",
        "2024-05-04",
        "2009-05-04",
    ]


# --- emails and messages ------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["josé@example.com", "a@bücher.de", "user@example.xn--p1ai"])
def test_unicode_emails_are_accepted_as_joi_accepts_them(email: str) -> None:
    record, errors = check_record({**VALID, "email": email})
    assert errors == () and record is not None and record["email"] == email


def test_no_reject_message_holds_the_rows_phone_email_or_name(read: Reader) -> None:
    # Given rows full of bad values
    data = (
        "Full Name,E-mail 1 - Value,Phone 1 - Value,Customer ID,Created Date,Accepts Email Marketing\n"
        "Zebedee,zebedee@@example,+91 55555,9.19811E+11,31/31/2024,perhaps\n"
        "Quentin Blake,quentin at example,12345,C-1,99/99/99,maybe\n"
    )
    _, rows = read(data.encode())
    # Then no message repeats what the row wrote
    for row in rows:
        assert row.errors
        for error in row.errors:
            for value in (
                "Zebedee",
                "zebedee",
                "Quentin",
                "Blake",
                "55555",
                "12345",
                "example",
                "9.19811E+11",
            ):
                assert value not in error


# --- what the attack on this session's changes found -----------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        # An unclosed quote in the last cell swallows the next rows: they must not vanish or be sent
        b'First Name,Last Name,Phone,Note\nA,B,9876543210,"VIP\nC,D,9123456789,x\nE,F,9000000001,y\n',
        # A stray quote in a middle column glues the next customer into this one
        b'First Name,Last Name,Phone\nA,"B,9876543210\nC,D",9123456789\nE,F,9000000001\n',
    ],
)
def test_a_quote_left_open_that_swallows_rows_stops_reading_where_it_starts(
    read: Reader, data: bytes
) -> None:
    from bik_sync.records import UnreadableFile

    with pytest.raises(UnreadableFile, match="unclosed quote in the row starting at row 2"):
        read(data)


def test_a_real_multi_line_note_is_still_one_cell(read: Reader) -> None:
    _, rows = read(
        b'First Name,Last Name,Phone,Note\nA,B,9876543210,"line one\nline two"\nC,D,9123456789,x\n'
    )
    assert [row.record is not None for row in rows] == [True, True]


def test_a_stray_cp1252_byte_in_a_utf8_file_spoils_no_other_name(read: Reader) -> None:
    data = "First Name,Last Name,Phone\nJosé,B,9876543210\n".encode() + "Zoë,C,9123456789\n".encode("cp1252")
    record_file, rows = read(data)
    assert record_file.encoding == "utf-8"
    assert [row.record["firstName"] for row in rows if row.record] == ["José", "Zoë"]


def test_a_date_like_address_in_json_does_not_decide_the_files_date_order(read: Reader) -> None:
    data = (
        b'[{"first_name":"Asha","last_name":"Rao","phone":"9876543210","address2":"3-14-25",'
        b'"created_at":"05/03/2024","country":"India"}]'
    )
    _, rows = read(data, "x.json")
    assert rows[0].record is not None and rows[0].record["createdAt"] == "2024-03-05"


@pytest.mark.parametrize("placeholder", ["N.A.", "N.A", "NA.", "n/A", "#NA", "-NA-"])
def test_placeholder_spellings_in_a_country_column_are_no_country_not_namibia(placeholder: str) -> None:
    record, errors = check_record({**VALID, "Country": placeholder, "Phone": "9876543210"})
    assert errors == () and record is not None and record["phoneNumber"] == "+919876543210"


@pytest.mark.parametrize("word", ["East", "Eastern", "West", "Braz"])
def test_a_short_start_of_a_name_is_not_taken_for_a_country(word: str) -> None:
    _, errors = check_record({**VALID, "Country": word, "Phone": "9876543210"})
    assert errors and "is not a country we recognise" in errors[0]


def test_a_rows_first_country_decides_and_two_that_disagree_decide_nothing() -> None:
    # An unrecognised first country does not fall through to the next column
    _, errors = check_record(
        {
            **VALID,
            "Default Address Country": "Hindustan",
            "Default Address Country Code": "US",
            "Phone": "2025550123",
        }
    )
    assert errors and '"Hindustan" is not a country we recognise' in errors[0]
    # Two columns naming different countries: a number without a code is not guessed
    _, errors = check_record(
        {
            **VALID,
            "Default Address Country": "United States",
            "Default Address Country Code": "IN",
            "Phone": "2025550123",
        }
    )
    assert errors and "the row names two countries (US and IN)" in errors[0]
    # Agreeing columns are one country
    record, errors = check_record(
        {
            **VALID,
            "Default Address Country": "India",
            "Default Address Country Code": "IN",
            "Phone": "9876543210",
        }
    )
    assert errors == () and record is not None and record["phoneNumber"] == "+919876543210"


def test_a_country_cell_holding_an_email_is_not_repeated_in_the_reason() -> None:
    _, errors = check_record({**VALID, "Country": "asha.rao@example.com", "Phone": "9876543210"})
    assert errors and "asha.rao" not in errors[0] and "is not a country we recognise" in errors[0]


def test_an_api_style_records_unknown_key_that_looks_like_personal_data_is_not_repeated() -> None:
    _, errors = check_record({**VALID, "+919876543210": "x"})
    assert errors == ('"(a key that looks like an email or a phone number)" is not allowed',)


def test_a_list_of_records_wrapped_twice_is_read_as_that_list(read: Reader) -> None:
    data = (
        b'{"data": {"customers": [{"first_name":"A","last_name":"B","email":"a@b.in"},'
        b'{"first_name":"C","last_name":"D","email":"c@d.in"}]}}'
    )
    _, rows = read(data, "x.json")
    assert [row.record is not None for row in rows] == [True, True]


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Asha Verma, MD", "Asha", "Verma"),
        ("Smith, John, Jr.", "John", "Smith"),
        ("Asha Verma (VIP)", "Asha", "Verma"),
    ],
)
def test_suffixes_and_bracketed_notes_are_no_part_of_a_name(full: str, first: str, last: str) -> None:
    record, errors = check_record({"Name": full, "email": "a@b.in"})
    assert errors == () and record is not None
    assert (record["firstName"], record["lastName"]) == (first, last)


def test_placeholder_words_in_a_whole_name_are_no_name() -> None:
    _, errors = check_record({"Name": "Asha NULL", "email": "a@b.in"})
    assert errors == ('"lastName" is required ("Name" has one word: give the name as first and last name)',)


def test_a_two_digit_year_with_dashes_is_not_guessed() -> None:
    _, errors = check_record({**VALID, "createdAt": "24-03-05"})
    assert errors and "write the year in full" in errors[0]


@pytest.mark.parametrize("phone", ["(+44) 7911 123456", "Tel: +44 7911 123456", "\uff0b44 7911 123456"])
def test_a_number_that_says_its_own_code_needs_no_country(phone: str) -> None:
    record, errors = check_record({**VALID, "Country": "Atlantis", "Phone": phone})
    assert errors == () and record is not None and record["phoneNumber"] == "+447911123456"


def test_the_email_patterns_character_classes_are_the_classes_they_were_written_from() -> None:
    # Given the classes the email pattern was first written with (ranges of 65,000 characters, slow
    # to compile at a cold start) and their complements that the pattern now uses
    import re

    from bik_sync.records import normalise

    written = [r"[a-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]", r"[a-z0-9\u00a0-\uffff-]", r"[a-z\u00a0-\uffff]"]
    used = [normalise._LOCAL_CHAR, normalise._LABEL_CHAR, normalise._TOP_CHAR]
    # When the first 12,288 characters, those at every edge of a range above, and a spread of the
    # rest are tried against both (every character takes 5 s: the classes change only at edges)
    edges = [0xD7FF, 0xD800, 0xDFFF, 0xE000, 0xFFFE, 0xFFFF, 0x10000, 0x10001, 0x10FFFF]
    tried = [*range(0x3000), *edges, *range(0x3000, 0x110000, 97)]
    # Then each class takes exactly the same characters
    for first, now in zip(written, used, strict=True):
        old, new = re.compile(first).fullmatch, re.compile(now).fullmatch
        differing = [cp for cp in tried if (old(chr(cp)) is None) != (new(chr(cp)) is None)]
        assert differing == []
