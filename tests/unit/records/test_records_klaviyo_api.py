"""Klaviyo's Profiles API JSON (JSON:API): each element of ``data`` holds the person under
``attributes``; ``type``, ``id`` and ``links`` describe the resource. Built from the shape Klaviyo
documents for Get Profiles (``additional-fields[profile]=subscriptions``), with made-up people."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

from bik_sync.records import ReadOptions
from bik_sync.records.fields import IDENTITY_MESSAGE
from bik_sync.records.formats import open_records
from bik_sync.records.validate import RecordBuilder


def _profile(klaviyo_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "profile",
        "id": klaviyo_id,
        "attributes": attributes,
        "relationships": {
            "lists": {"links": {"self": f"https://a.klaviyo.com/api/profiles/{klaviyo_id}/lists/"}}
        },
        "links": {"self": f"https://a.klaviyo.com/api/profiles/{klaviyo_id}/"},
    }


def _consent(email: str, sms: str) -> dict[str, Any]:
    return {
        "email": {"marketing": {"can_receive_email_marketing": email == "SUBSCRIBED", "consent": email}},
        "sms": {"marketing": {"can_receive_sms_marketing": sms == "SUBSCRIBED", "consent": sms}},
    }


PAGE: dict[str, Any] = {
    "data": [
        _profile(
            "01HZX5Q3N4C8V1M2K7T9R6P0AB",
            email="Meera.Nair@Example.in",
            phone_number="+919845012345",
            external_id="SHOP-10021",
            anonymous_id=None,
            first_name="Meera",
            last_name="Nair",
            organization=None,
            locale="en-IN",
            title=None,
            image=None,
            created="2024-03-05T09:12:44+00:00",
            updated="2024-11-20T17:03:10+00:00",
            last_event_date="2024-11-19T08:00:00+00:00",
            location={
                "address1": "7 Residency Road",
                "address2": None,
                "city": "Bengaluru",
                "country": "India",
                "latitude": None,
                "longitude": None,
                "region": "Karnataka",
                "zip": "560025",
                "timezone": "Asia/Kolkata",
                "ip": None,
            },
            properties={"Loyalty Tier": "gold"},
            subscriptions=_consent("SUBSCRIBED", "NEVER_SUBSCRIBED"),
        ),
        _profile(
            "01HZX5Q3N4C8V1M2K7T9R6P0AC",
            email="liam.ortiz@example.com",
            phone_number=None,
            external_id=None,
            first_name=None,
            last_name=None,
            created="2024-06-01T00:00:00+00:00",
            location=None,
            properties={},
        ),
        _profile(
            "01HZX5Q3N4C8V1M2K7T9R6P0AD",
            email=None,
            phone_number="+447911123456",
            first_name="Olivia",
            last_name="Brown",
            location={"city": "Leeds", "country": "United Kingdom", "region": None, "zip": "LS1 4AP"},
            subscriptions=_consent("UNSUBSCRIBED", "SUBSCRIBED"),
        ),
    ],
    "links": {"self": "https://a.klaviyo.com/api/profiles/", "next": None, "prev": None},
}

MEERA = {
    "firstName": "Meera",
    "lastName": "Nair",
    "phoneNumber": "+919845012345",
    "email": "meera.nair@example.in",
    "address1": "7 Residency Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "country": "India",
    "createdAt": "2024-03-05T09:12:44+00:00",
    "updatedAt": "2024-11-20T17:03:10+00:00",
    "emailMarketingConsent": True,
    "smsMarketingConsent": False,
    "partnerCustomerId": "SHOP-10021",
}
OLIVIA = {
    "firstName": "Olivia",
    "lastName": "Brown",
    "phoneNumber": "+447911123456",
    "city": "Leeds",
    "country": "United Kingdom",
    "emailMarketingConsent": False,
    "smsMarketingConsent": True,
}


def test_a_klaviyo_profiles_page_becomes_one_record_per_profile_from_its_attributes() -> None:
    # Given a page of Klaviyo's Get Profiles response, saved as a file
    body = json.dumps(PAGE, indent=2).encode()
    # When it is read
    record_file = open_records(io.BytesIO(body), "klaviyo_profiles.json")
    rows = list(record_file)
    # Then each profile is a record of its attributes; one without a name is a reject that says so
    assert [row.number for row in rows] == [1, 2, 3]
    assert rows[0].record == MEERA
    assert rows[1].record is None
    assert rows[1].errors == ('"firstName" is required', '"lastName" is required')
    assert rows[2].record == OLIVIA
    # And Klaviyo's own id and the resource's links are not read as the person's data, nor listed
    sent = json.dumps([row.record for row in rows])
    assert "01HZX5Q3N4C8V1M2K7T9R6P0A" not in sent and "klaviyo.com" not in sent
    envelope = {"id", "type", "links.self", "relationships.lists.links.self"}
    assert not envelope & set(record_file.ignored_columns)
    # And the attributes that map to no field are listed, by their names inside attributes
    assert {"locale", "location.zip", "properties.Loyalty Tier", "last_event_date"} <= set(
        record_file.ignored_columns
    )


def test_klaviyo_profiles_as_gzipped_json_lines_read_the_same() -> None:
    # Given the same profiles, one resource object a line, gzipped
    lines = "\n".join(json.dumps(profile) for profile in PAGE["data"]) + "\n"
    body = gzip.compress(lines.encode())
    # When it is read
    rows = list(open_records(io.BytesIO(body), "profiles.jsonl.gz"))
    # Then the records are the same
    assert [row.record for row in rows] == [MEERA, None, OLIVIA]


def test_only_a_resource_object_is_unwrapped_an_attributes_field_of_a_record_is_not() -> None:
    builder = RecordBuilder(ReadOptions())
    # Given a record of another system that has an "attributes" object beside its own fields
    own = {"first_name": "Ravi", "last_name": "Das", "email": "ravi@example.in"}
    record, errors = builder.check_object({**own, "attributes": {"email": "x@y.in"}})
    # Then its own fields are the record
    assert errors == () and record is not None and record["email"] == "ravi@example.in"
    # And an object shaped as a resource but with members JSON:API has not is no resource either
    record, errors = builder.check_object(
        {"type": "profile", "attributes": {"email": "x@y.in"}, "first_name": "Ravi", "last_name": "Das"}
    )
    assert (record, errors) == (None, (IDENTITY_MESSAGE,))
    # And a queue record written as a resource object is read from its attributes, like a file's
    attributes = {"first_name": "Asha", "last_name": "Rao", "email": "a@b.in"}
    record, errors = builder.check_object({"type": "profile", "id": "01X", "attributes": attributes})
    assert errors == () and record == {"firstName": "Asha", "lastName": "Rao", "email": "a@b.in"}
