"""Properties of the record core: phones keep their row's country, and a CSV row and a queue record agree."""

from __future__ import annotations

import csv
import io
from typing import Any

import phonenumbers
import pycountry
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bik_sync.records import ReadOptions, check_record
from bik_sync.records.countries import country_code
from bik_sync.records.formats import open_records
from bik_sync.records.validate import RecordBuilder

# Phone regions that are countries (ISO 3166, and Kosovo); Ascension (AC) and Tristan da Cunha (TA)
# are phone regions no country column names: their rows are rejected, as an unknown country's are.
REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if pycountry.countries.get(alpha_2=r) or r == "XK")
DEFAULT_CODE = phonenumbers.country_code_for_region("IN")


def _national(region: str, kind: int) -> str | None:
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)


def _country_forms(region: str) -> list[str]:
    forms = [region, region.lower()]
    country = pycountry.countries.get(alpha_2=region)
    if country is not None:
        forms += [country.alpha_3, country.name, country.name.upper(), country.name.lower()]
        forms += [
            getattr(country, "official_name", country.name),
            getattr(country, "common_name", country.name),
        ]
    return forms


@st.composite
def national_phones(draw: st.DrawFn) -> tuple[str, str, str]:
    """(region, a national number of it, the region's country as some row would write it)."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(
        st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    )
    number = _national(region, kind)
    if number is None:
        number = draw(st.from_regex(r"[1-9][0-9]{6,10}", fullmatch=True))
    return region, number, draw(st.sampled_from(_country_forms(region)))


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _phone_code(phone: str) -> int:
    code = phonenumbers.parse(phone, None).country_code
    assert code is not None
    return int(code)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phone=national_phones(), with_country=st.booleans())
def test_a_phone_without_a_country_code_only_ever_gets_its_rows_country(
    phone: tuple[str, str, str], with_country: bool
) -> None:
    # Given a national number, and its row naming the number's country in some form (or no country)
    region, number, country = phone
    written = country if with_country else ""
    expected = phonenumbers.country_code_for_region(region) if with_country else DEFAULT_CODE
    queue_record = {"First Name": "Asha", "Last Name": "Verma", "Phone": number, "Country": written}
    data = _csv([["First Name", "Last Name", "Phone", "Country"], ["Asha", "Verma", number, written]])
    # When it is read from a CSV file and as a queue record
    (row,) = list(open_records(io.BytesIO(data), "c.csv"))
    record, errors = check_record(queue_record)
    # Then both agree, and an accepted phone has the row's country's code (the default region's without one)
    assert (row.record, row.errors) == (record, errors)
    known = country_code(written) if with_country else None
    assert known in (None, region), f"{written!r} read as {known}"
    if with_country and known is None:  # a name two countries share ("Congo"): neither is guessed
        assert record is None and "is not a country we recognise" in errors[0]
    elif record is not None:
        assert _phone_code(record["phoneNumber"]) == expected
    else:
        assert errors == ('"phoneNumber" (from "Phone") must be a valid phone number',)


@settings(max_examples=150, deadline=None)
@given(
    phone=national_phones(),
    unknown=st.sampled_from(["Narnia", "Wakanda", "Atlantis", "Republic of Nowhere", "ZZ", "XYZ", "Korea"]),
)
def test_an_unrecognised_country_with_a_national_phone_is_always_rejected(
    phone: tuple[str, str, str], unknown: str
) -> None:
    # Given a national number on a row whose country is nothing we recognise
    _, number, _ = phone
    # When it is checked
    record, errors = check_record(
        {"firstName": "A", "lastName": "B", "phoneNumber": number, "country": unknown}
    )
    # Then it is rejected, quoting the country (never guessed as the default region)
    assert record is None
    assert errors == (
        f'"phoneNumber" has no country code and the row\'s country "{unknown}" is not a country we '
        "recognise: write the number with its country code (+44...) or the country as a name or ISO code",
    )


@settings(max_examples=100, deadline=None)
@given(phone=national_phones(), unknown=st.sampled_from(["Narnia", "ZZ", "", "-"]))
def test_a_phone_written_with_its_country_code_needs_no_country(
    phone: tuple[str, str, str], unknown: str
) -> None:
    # Given a number in international form, on a row naming an unknown country, a placeholder or none
    region, number, _ = phone
    international = phonenumbers.format_number(
        phonenumbers.parse(number, region), phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    record, errors = check_record(
        {"firstName": "A", "lastName": "B", "phoneNumber": international, "country": unknown}
    )
    # Then it keeps its own code whenever it is valid
    if record is not None:
        assert _phone_code(record["phoneNumber"]) == phonenumbers.country_code_for_region(region)
    else:
        assert errors == ('"phoneNumber" must be a valid phone number',)


# --- the generated CSV path and check_object agree -------------------------------------------

HEADER = [
    "First Name",
    "Last Name",
    "Full Name",
    "Email",
    "Phone",
    "Default Address Phone",
    "Accepts Email Marketing",
    "Tags",
    "Created Date",
    "Country",
    "Customer ID",
    "City",
    "Address1",
]
PLACEHOLDERS = [
    "",
    " ",
    "null",
    "NULL",
    "-",
    "--",
    "N/A",
    "n/a",
    "na",
    "NA",
    "none",
    "None",
    "#N/A",
    "(blank)",
]
REALISTIC: dict[str, list[str]] = {
    "First Name": ["Asha", "Na", "Nil", "José", "D'Souza", "Zoë"],
    "Last Name": ["Verma", "O'Brien", "Ågård"],
    "Full Name": ["Asha Verma", "Madonna", "Na Yeon Kim", "  Priya   Sharma "],
    "Email": ["asha@example.in", "ASHA@Example.IN", "josé@example.com", "a@bücher.de", "nope", "a@@b.com"],
    "Phone": [
        "9811122233",
        "+91 98111 22233",
        "(415) 555-2671",
        "081 234 5678",
        "01712-345678",
        "12",
        "7.02255E+12",
    ],
    "Default Address Phone": ["9811122233", "+919000000000", "022 2345 6789", "abc"],
    "Accepts Email Marketing": ["yes", "No", "TRUE", "subscribed", "NEVER_SUBSCRIBED", "perhaps", "y"],
    "Tags": ["vip, repeat", '"Customer","VIP"', "* myContacts ::: Customers", ",,"],
    "Created Date": [
        "2024-03-05",
        "2024-03-05 10:20:30",
        "4/20/09",
        "2/5/24 1:51 PM",
        "25/12/2024",
        "31/31/2024",
    ],
    "Country": [
        "India",
        "IN",
        "IND",
        "US",
        "United States of Ame",
        "Thailand",
        "Bangladesh",
        "Narnia",
        "na",
        "NA",
    ],
    "Customer ID": ["7210448301122", "7.02255E+12", "12E45", "C-001"],
    "City": ["Pune", "Bengaluru"],
    "Address1": ["12-B MG Road", "14, MG Road"],
}


@st.composite
def cells_for(draw: st.DrawFn, column: str) -> str:
    value = draw(st.sampled_from(REALISTIC[column]) | st.sampled_from(PLACEHOLDERS) | st.text(max_size=6))
    guard = draw(st.sampled_from(["", "'"]))
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return pad + guard + value + pad


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.tuples(*(cells_for(column) for column in HEADER)))
def test_the_generated_csv_path_and_check_object_build_the_same_record(cells: tuple[str, ...]) -> None:
    # Given one row of cells under a fixed header, and the same as a JSON object
    assume(not any("\x00" in cell for cell in cells))
    row = list(cells)
    obj: dict[str, Any] = dict(zip(HEADER, row, strict=True))
    # When the CSV plan builds it and check_object checks it
    from_csv = RecordBuilder(ReadOptions()).plan(HEADER).build(list(row))
    from_object = RecordBuilder(ReadOptions()).check_object(obj)
    # Then both give the same record and the same errors
    assert from_csv == from_object
