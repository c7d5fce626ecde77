"""Issue 8's rules, each with the inputs that must fire it and the look-alikes that must not."""

from __future__ import annotations

from typing import Any

from bik_sync.records import check_record

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
