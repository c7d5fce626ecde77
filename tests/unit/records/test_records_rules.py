"""Mapping, normalisation and validation rules, worded as the API words them."""

from __future__ import annotations

import json

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bik_sync.records import ReadOptions, check_record, load_mapping
from bik_sync.records.dates import to_date
from bik_sync.records.errors import FieldError
from bik_sync.records.mapping import PRESETS, Mapper, name_key
from bik_sync.records.normalise import to_boolean, to_email, to_tags
from bik_sync.records.phones import PhoneNormaliser

from .conftest import Reader

VALID = {"firstName": "Asha", "lastName": "Verma", "email": "asha@example.in"}


# --- check_record: what the SQS worker calls ------------------------------------------------


def test_a_valid_api_record_comes_back_normalised() -> None:
    record, errors = check_record({**VALID, "phoneNumber": "'+91 98111 22233", "email": " Asha@Example.IN "})
    assert errors == ()
    assert record == {
        "firstName": "Asha",
        "lastName": "Verma",
        "phoneNumber": "+919811122233",
        "email": "asha@example.in",
    }


def test_a_lone_surrogate_from_a_json_escape_is_rejected_in_a_name_or_a_tag() -> None:
    # json.loads('"\\ud800"') gives a string no UTF-8 can carry: BIK could never receive it
    _, errors = check_record({**VALID, "firstName": "A\ud800", "tags": ["ok", "\udfff"]})
    assert errors == (
        '"firstName" must be valid Unicode text (it holds a lone surrogate)',
        '"tags" must be valid Unicode text (it holds a lone surrogate)',
    )
    # And a proper pair (an emoji written as two escapes) is fine
    record, errors = check_record({**VALID, "firstName": json.loads('"Asha \\ud83d\\ude00"')})
    assert errors == () and record is not None and record["firstName"] == "Asha \U0001f600"


def test_each_problem_gets_one_api_style_message_in_field_order() -> None:
    record, errors = check_record({"firstName": "", "emial": "x", "email": "nope", "phoneNumber": "12"})
    assert record is None
    assert errors == (
        '"firstName" is required',
        '"lastName" is required',
        '"phoneNumber" must be a valid phone number',
        '"email" must be a valid email',
        '"emial" is not allowed',
    )


def test_a_record_without_any_identity_says_which_fields_it_needs() -> None:
    _, errors = check_record({"firstName": "A", "lastName": "B", "city": "Pune"})
    assert errors == ("needs at least one of phoneNumber, email or partnerCustomerId",)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("firstName", 12, '"firstName" must be a string'),
        ("emailMarketingConsent", "perhaps", '"emailMarketingConsent" must be a boolean'),
        ("tags", {"a": 1}, '"tags" must be an array'),
        ("tags", ["ok", 3], '"tags[1]" must be a string'),
        ("createdAt", "31/31/2024", '"createdAt" must be a valid date'),
        ("city", ["Pune"], '"city" must be a string'),
    ],
)
def test_wrong_types_are_rejected_like_the_api(field: str, value: object, message: str) -> None:
    assert check_record({**VALID, field: value}) == (None, (message,))


def test_presets_apply_to_queue_records_and_reject_bookkeeping_keys_are_skipped() -> None:
    record, errors = check_record(
        {"first_name": "A", "Last Name": "B", "Mobile": "9811122233", "_row": 4, "_error": "x"}
    )
    assert errors == ()
    assert record == {"firstName": "A", "lastName": "B", "phoneNumber": "+919811122233"}


def test_a_non_object_record_is_rejected() -> None:
    assert check_record(["a"]) == (None, ('"value" must be of type object',))


def test_a_csv_row_and_the_same_record_from_the_queue_agree(read: Reader) -> None:
    # Given the same customer as a CSV row and as a queue record
    _, rows = read(
        b'First Name,Last Name,Phone,Accepts SMS Marketing,Tags\nAsha,Verma,\'09811122233,Yes,"a, b"\n'
    )
    record, errors = check_record(
        {
            "firstName": "Asha",
            "lastName": "Verma",
            "phoneNumber": "09811122233",
            "smsMarketingConsent": "Yes",
            "tags": "a, b",
        }
    )
    # Then both become the same API record
    assert rows[0].record == record
    assert errors == ()


# --- mapping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["First Name", "first_name", "FIRST-NAME", "firstName", " first name "])
def test_header_names_match_case_and_punctuation_insensitively(header: str) -> None:
    assert Mapper().target(header) == ("firstName", 0)


def test_every_preset_targets_an_api_field() -> None:
    from bik_sync.records import API_FIELDS

    assert {field for field, _ in PRESETS.values()} <= {*API_FIELDS, "fullName"}


def test_a_user_mapping_beats_presets_and_can_ignore_a_column(read_fixture: Reader) -> None:
    mapping = load_mapping(
        '{"Mobile No": "phoneNumber", "Given": "firstName", "Family": "lastName", "Pin": null}', "m"
    )
    record_file, rows = read_fixture("custom_columns.csv", mapping=mapping)
    # "Mobile No" (user) wins over "Mobile" (preset), which becomes the alternate; "Pin" is ignored
    # without being listed
    assert rows[0].record == {
        "firstName": "Asha",
        "lastName": "Verma",
        "phoneNumber": "+919811122233",
        "alternatePhoneNumber": "+919000000000",
    }
    assert record_file.ignored_columns == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"Mobile": "phone"}', "m.json: 'Mobile' maps to 'phone', which is not a BIK field"),
        ('{"Mail": "E-mail"}', "did you mean 'email'?"),
        ("[1, 2]", "m.json: a mapping is a JSON object"),
        ('{"Mobile": ', "m.json: not valid JSON at line 1, column 12"),
        ('{"Mobile": 3}', "m.json: 'Mobile' maps to 3, which is not a field name"),
    ],
)
def test_a_bad_mapping_file_names_its_origin_and_the_bad_entry(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=r"^m\.json") as caught:
        load_mapping(text, "m.json")
    assert expected in str(caught.value)


def test_name_key_drops_everything_but_letters_and_digits() -> None:
    assert name_key("Default Address Address1") == "defaultaddressaddress1"


# --- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9876543210", "+919876543210"),
        ("'+919876543210", "+919876543210"),
        ("+91 98765-43210", "+919876543210"),
        ("09876543210", "+919876543210"),
        ("919876543210", "+919876543210"),
        ("0091 98765 43210", "+919876543210"),
        ("022 2345 6789", "+912223456789"),
        ("+44 20 7946 0958", "+442079460958"),
        (9876543210, "+919876543210"),
    ],
)
def test_phone_numbers_are_written_in_e164_with_india_as_the_default_region(
    raw: object, expected: str
) -> None:
    assert PhoneNormaliser()(raw, "phoneNumber") == expected


@pytest.mark.parametrize("raw", ["12345", "98765", "abc", "0000000000", "+91 55555"])
def test_impossible_phone_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(FieldError, match='"phoneNumber" must be a valid phone number'):
        PhoneNormaliser()(raw, "phoneNumber")


@settings(max_examples=60, deadline=None)
@given(
    mobile=st.from_regex(r"[6-9][0-9]{9}", fullmatch=True),
    shape=st.sampled_from(["{m}", "+91{m}", "0{m}", "91{m}", "+91 {a} {b}", "'{m}"]),
    style=st.sampled_from(["E164", "INTERNATIONAL", "NATIONAL"]),
)
def test_the_indian_mobile_fast_path_matches_phonenumbers(mobile: str, shape: str, style: str) -> None:
    raw = shape.format(m=mobile, a=mobile[:5], b=mobile[5:])
    expected = phonenumbers.format_number(
        phonenumbers.parse(mobile, "IN"), getattr(phonenumbers.PhoneNumberFormat, style)
    )
    assert PhoneNormaliser("IN", style)(raw, "phoneNumber") == expected


def test_a_row_country_overrides_the_default_region_for_phones() -> None:
    record, _ = check_record({**VALID, "phoneNumber": "(415) 555-2671", "country": "United States"})
    assert record is not None and record["phoneNumber"] == "+14155552671"


def test_the_default_region_and_phone_format_are_options() -> None:
    options = ReadOptions(default_region="GB", phone_format="INTERNATIONAL")
    record, _ = check_record({**VALID, "phoneNumber": "020 7946 0958"}, options)
    assert record is not None and record["phoneNumber"] == "+44 20 7946 0958"


def test_emails_are_trimmed_lower_cased_and_validated() -> None:
    assert to_email("  Priya.S@Gmail.COM ", "email") == "priya.s@gmail.com"
    assert to_email("   ", "email") is None
    for bad in ["priya@gmail", "priya at gmail.com", "a@@b.com", '=HYPERLINK("x")']:
        with pytest.raises(FieldError, match='"email" must be a valid email'):
            to_email(bad, "email")


def test_googles_joined_addresses_give_the_first_and_other_separators_stay_rejects() -> None:
    # Given Google Contacts' " ::: " between a contact's addresses (an empty value before them skipped)
    # Then the first is the email, lower-cased; it is checked, the others are not read
    assert to_email("Asha@Example.in ::: asha.rao@work.example", "email") == "asha@example.in"
    assert to_email(" ::: asha@example.in ::: not an address", "email") == "asha@example.in"
    # And a first value that is no address, no value at all, or a comma or semicolon between two
    # addresses, is a reject as before
    for bad in ["asha@example ::: asha@work.example", " ::: ", "a@example.in, b@example.in", "a@x.in;b@x.in"]:
        with pytest.raises(FieldError, match='"email" must be a valid email'):
            to_email(bad, "email")
    # And a queue record holding the joined cell sends the first address
    record, errors = check_record({**VALID, "email": "asha@example.in ::: asha@work.example"})
    assert errors == () and record is not None and record["email"] == "asha@example.in"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("yes", True),
        ("No", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("y", True),
        ("n", False),
        ("subscribed", True),
        ("not_subscribed", False),
        ("unsubscribed", False),
        ("pending", False),
        (True, True),
        ("", None),
    ],
)
def test_booleans_accept_what_exports_write(raw: object, expected: bool | None) -> None:
    assert to_boolean(raw, "emailMarketingConsent") is expected


def test_tags_come_from_comma_strings_or_lists_trimmed_and_deduplicated() -> None:
    assert to_tags(" vip, repeat ,,vip ", "tags") == ["vip", "repeat"]
    assert to_tags(["a", " b "], "tags") == ["a", "b"]
    assert to_tags(" , ", "tags") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05 10:20:30", "2024-03-05T10:20:30"),
        ("2024-03-05T10:20:30Z", "2024-03-05T10:20:30+00:00"),
        ("2024-03-05T10:20:30+05:30", "2024-03-05T10:20:30+05:30"),
        ("05/03/2024", "2024-03-05"),
        ("03/25/2024", "2024-03-25"),
        ("5-3-2024 9:05", "2024-03-05T09:05:00"),
        ("2024/03/05", "2024-03-05"),
        ("5 Mar 2024", "2024-03-05"),
    ],
)
def test_dates_become_iso_8601(raw: str, expected: str) -> None:
    assert to_date(raw, "createdAt") == expected


def test_the_readme_lists_every_preset_column_name() -> None:
    # Given the README's section on the files it reads
    from pathlib import Path

    from bik_sync.records.mapping import PRESET_GROUPS

    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Files it reads", 1)[1].split("\n## ", 1)[0]
    # Then every preset column name stands in it, quoted as a user would type it
    missing = [
        name
        for tool, entries in PRESET_GROUPS
        if not tool.startswith("BIK API")
        for _, _, names in entries
        for name in names
        if f"`{name}`" not in section
    ]
    assert missing == []
