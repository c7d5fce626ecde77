"""Matching the entries BIK echoes back to the records sent: by identity, then by position."""

from __future__ import annotations

from bik_sync.bik import match_rejections
from bik_sync.bik.matching import MATCH_ORDER
from bik_sync.records.fields import IDENTITY_FIELDS


def test_an_entry_without_identity_is_placed_by_position_between_its_matched_neighbours() -> None:
    records = [{"firstName": str(i), "lastName": "x", "email": f"{i}@x.io"} for i in range(5)]
    entries = [
        {"email": "1@x.io", "error": "e1"},
        {"firstName": "nobody", "error": "e2"},  # identity stripped by BIK: must be record 2
        {"email": "3@x.io", "error": "e3"},
    ]
    records[2] = {"firstName": "2", "lastName": "x"}

    assert match_rejections(records, entries, default_reason="r") == [(1, "e1"), (2, "e2"), (3, "e3")]


def test_a_leftover_entry_prefers_the_candidate_sharing_field_values() -> None:
    records = [{"firstName": n, "lastName": "x"} for n in ("Ann", "Bob", "Cid")]
    entries = [{"firstName": "Bob", "error": "bad"}]

    assert match_rejections(records, entries, default_reason="r") == [(1, "bad")]


def test_an_entry_that_cannot_be_matched_is_kept_with_no_index() -> None:
    records = [{"firstName": n, "lastName": "x"} for n in ("Ann", "Bob", "Cid")]
    entries = [{"storeId": "s", "error": "mystery"}]

    assert match_rejections(records, entries, default_reason="r") == [(None, "mystery")]


def test_two_entries_for_the_same_identity_match_two_different_records() -> None:
    records = [{"firstName": "A", "lastName": "x", "email": "same@x.io"}] * 2
    entries = [{"email": "same@x.io", "error": "e1"}, {"email": "same@x.io", "error": "e2"}]

    assert match_rejections(records, entries, default_reason="r") == [(0, "e1"), (1, "e2")]


def test_identities_are_tried_most_specific_first_and_are_the_record_cores_identity_fields() -> None:
    # Given an entry whose email names record 0 and whose partner id names record 1
    records = [
        {"firstName": "A", "lastName": "x", "email": "a@x.io"},
        {"firstName": "B", "lastName": "x", "partnerCustomerId": "P-2"},
    ]
    entries = [{"email": "a@x.io", "partnerCustomerId": "P-2", "error": "bad"}]

    # Then the partner's own id wins, and the fields tried are exactly the record core's identities
    assert match_rejections(records, entries, default_reason="r") == [(1, "bad")]
    assert MATCH_ORDER[0] == "partnerCustomerId"
    assert sorted(MATCH_ORDER) == sorted(IDENTITY_FIELDS)
