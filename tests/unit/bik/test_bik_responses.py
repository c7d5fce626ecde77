"""Reading BIK's answers: the verdict in a 200 (matched and reconciled), a refusal's text, Retry-After."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest

from bik_sync.bik.responses import Verdict, error_message, parse_retry_after, parse_success


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3.0),
        (" 0.5 ", 0.5),
        ("0", 0.0),
        (formatdate(1_700_000_030.0, usegmt=True), 30.0),
        (formatdate(1_699_999_000.0, usegmt=True), 0.0),  # in the past: go now
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(raw: str | None, expected: float | None) -> None:
    assert parse_retry_after(raw, now=1_700_000_000.0) == (pytest.approx(expected) if expected else expected)


def test_a_400_message_falls_back_to_the_text_when_the_body_is_not_json() -> None:
    assert error_message(b"bad things", 400) == "bad things"
    assert error_message(b"", 400) == "BIK answered 400"
    assert error_message(b'{"error": {"message": "nope"}}', 400) == "nope"


def test_invalid_records_are_matched_back_despite_reformatted_phone_and_email_case() -> None:
    # Given BIK echoes two records back changed: the phone reformatted, the email upper-cased
    records = [
        {"firstName": "A", "lastName": "A", "phoneNumber": "+919876543210"},
        {"firstName": "B", "lastName": "B", "email": "b@example.com"},
        {"firstName": "C", "lastName": "C", "partnerCustomerId": "c-1"},
    ]
    body = json.dumps(
        {
            "status": 200,
            "data": {
                "invalidUserProperties": [
                    {"email": "B@EXAMPLE.COM", "storeId": "s", "customerId": None, "error": '"lastName" bad'},
                    {"phoneNumber": "98765 43210", "storeId": "s", "customerId": None, "error": '"tags" bad'},
                ],
                "bulkUpsertUPResponse": {"createCount": 1, "updateCount": 0, "docsFailedToUpdate": []},
            },
        }
    ).encode()

    # When the response is read
    result = parse_success(body, records)

    # Then each error lands on the record it belongs to
    assert result == Verdict(1, 0, [(1, '"lastName" bad'), (0, '"tags" bad')], [])


def test_docs_failed_to_update_as_bare_identities_become_rejects_with_a_default_reason() -> None:
    records = [
        {"firstName": "A", "lastName": "x", "partnerCustomerId": "P-1"},
        {"firstName": "B", "lastName": "x", "email": "b@x.io"},
    ]
    body = json.dumps(
        {
            "status": "200",
            "data": {
                "invalidUserProperties": [],
                "bulkUpsertUPResponse": {
                    "createCount": 1,
                    "updateCount": 0,
                    "docsFailedToUpdate": ["b@x.io"],
                },
            },
        }
    ).encode()

    assert parse_success(body, records) == Verdict(1, 0, [(1, "BIK could not update this record")], [])


def test_a_record_in_both_lists_is_rejected_once_with_both_reasons() -> None:
    records = [{"firstName": "A", "lastName": "x", "email": "a@x.io"}]
    body = json.dumps(
        {
            "status": 200,
            "data": {
                "invalidUserProperties": [{"email": "a@x.io", "error": "bad"}],
                "bulkUpsertUPResponse": {"docsFailedToUpdate": [{"email": "a@x.io", "error": "also"}]},
            },
        }
    ).encode()

    verdict = parse_success(body, records)

    assert verdict is not None
    assert verdict.rejected == [(0, "bad; also")]
    assert (verdict.created, verdict.updated, verdict.unmatched) == (0, 0, [])


def test_more_unmatched_entries_than_records_left_keep_every_reason_without_outnumbering_records() -> None:
    records = [{"firstName": n, "lastName": "x"} for n in ("Ann", "Bob")]
    body = json.dumps(
        {
            "status": 200,
            "data": {"invalidUserProperties": [{"error": "e1"}, {"error": "e2"}, {"error": "e3"}]},
        }
    ).encode()

    assert parse_success(body, records) == Verdict(0, 0, [], ["e1", "e2; e3"])


def test_counts_are_reconciled_so_every_sent_record_is_counted_exactly_once() -> None:
    # Given two rows of one person in a batch: BIK says 1 created and 0 updated for 2 accepted records
    records = [{"firstName": "A", "lastName": "x", "email": "a@x.io"}] * 2
    short = json.dumps({"status": 200, "data": {"bulkUpsertUPResponse": {"createCount": 1}}}).encode()
    over = json.dumps(
        {"status": 200, "data": {"bulkUpsertUPResponse": {"createCount": 5, "updateCount": 4}}}
    ).encode()

    assert parse_success(short, records) == Verdict(1, 1, [], [])
    assert parse_success(over, records) == Verdict(2, 0, [], [])


def test_an_entry_matching_no_record_is_unmatched_and_never_blamed_on_a_record_sent() -> None:
    # Given BIK reports one entry that names none of the three records, and counts the other two
    records = [{"firstName": n, "lastName": "x", "email": f"{n}@x.io"} for n in ("ann", "bob", "cid")]
    body = json.dumps(
        {
            "status": 200,
            "data": {
                "invalidUserProperties": [{"storeId": "s", "error": "mystery"}],
                "bulkUpsertUPResponse": {"createCount": 2, "updateCount": 0},
            },
        }
    ).encode()

    # Then it stands for one record without any record (not the last one either) carrying its reason
    assert parse_success(body, records) == Verdict(2, 0, [], ["mystery"])
