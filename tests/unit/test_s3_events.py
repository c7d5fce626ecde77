from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bik_sync.s3_events import EventShapeError, objects_from_event


def test_s3_put_event_gives_the_decoded_key_with_spaces_and_unicode(
    lambda_event: Callable[[str], dict[str, Any]],
) -> None:
    # Given the S3 put event AWS sends for "incoming/Q3 customers – Mumbai é.csv"
    event = lambda_event("s3-put.json")
    # When it is read
    [ref] = objects_from_event(event)
    # Then the key is decoded and the version is kept, so a redelivery maps to the same job
    assert ref.key == "incoming/Q3 customers – Mumbai é.csv"
    assert ref.bucket == "bik-sync-data-123456789012-ap-south-1"
    assert ref.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert ref.size == 48213


def test_moto_shape_with_encoded_slash_and_missing_fields_is_read(
    lambda_event: Callable[[str], dict[str, Any]],
) -> None:
    [ref] = objects_from_event(lambda_event("s3-put-moto.json"))
    assert ref.key == "incoming/my file é.csv"
    assert ref.version_id == ""
    assert ref.etag == "f69f5b72bc79a92dc70c63c9aa142e36"


def test_multipart_upload_counts_as_a_created_object(lambda_event: Callable[[str], dict[str, Any]]) -> None:
    [ref] = objects_from_event(lambda_event("s3-multipart-complete.json"))
    assert ref.key == "incoming/exports/shopify/customers_export_1.csv.gz"


def test_s3_event_through_sqs_is_unwrapped_and_the_test_event_skipped(
    lambda_event: Callable[[str], dict[str, Any]],
) -> None:
    # Given an SQS batch holding one S3 notification and S3's test event
    event = lambda_event("sqs-s3-notification.json")
    # When it is read
    refs = objects_from_event(event)
    # Then only the real object remains
    assert [r.key for r in refs] == ["incoming/customers (Nov).csv"]


def test_removal_events_are_not_objects_to_ingest(lambda_event: Callable[[str], dict[str, Any]]) -> None:
    event = lambda_event("s3-put.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert objects_from_event(event) == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({}, "no Records"),
        ({"Records": [{"eventSource": "aws:sns"}]}, "neither"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "not json"}]}, "not JSON"),
        ({"Records": [{"s3": {"bucket": {}}}]}, "lacks"),
    ],
)
def test_events_of_other_shapes_are_refused_with_a_reason(event: Any, reason: str) -> None:
    with pytest.raises(EventShapeError, match=reason):
        objects_from_event(event)
