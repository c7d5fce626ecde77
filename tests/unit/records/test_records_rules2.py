"""Issue 8's rules, each with the inputs that must fire it and the look-alikes that must not."""

from __future__ import annotations

from typing import Any

import pytest

from bik_sync.records import check_record

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
