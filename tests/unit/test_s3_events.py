from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bik_sync.commands.status import JobsTable
from bik_sync.job_state import UploadOrder
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
        ({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": 5}}}]}, "lacks"),
        ({"Records": [{"s3": {"bucket": {"name": 5}, "object": {"key": "incoming/a.csv"}}}]}, "lacks"),
    ],
)
def test_events_of_other_shapes_are_refused_with_a_reason(event: Any, reason: str) -> None:
    with pytest.raises(EventShapeError, match=reason):
        objects_from_event(event)


def test_the_sequencers_of_aws_events_order_two_uploads_of_a_key_within_one_second(
    lambda_event: Callable[[str], dict[str, Any]],
) -> None:
    # Given AWS's events of two uploads of one key in the same millisecond, the later one's
    # sequencer longer (AWS: left-pad the shorter with zeros), the earlier one's run sorting after
    event = lambda_event("s3-put.json")
    [earlier] = objects_from_event(event)
    event["Records"][0]["s3"]["object"].update(sequencer="0100AED6DCD90281E5", versionId="v2")
    [later] = objects_from_event(event)
    assert (earlier.sequencer, earlier.event_time) == ("0055AED6DCD90281E5", 1795932902.114)
    same_second = earlier.event_time or 0.0
    first = earlier.upload_order(run="20261129T061502Z-ffff", served_etag="", last_modified=same_second)
    second = later.upload_order(run="20261129T061502Z-0000", served_etag="", last_modified=same_second)
    # Then the later sequencer is the later upload, whatever the runs and the string order say
    assert second.is_after(first) and not first.is_after(second)
    assert UploadOrder(sequencer="100").is_after(UploadOrder(sequencer="0FF"))  # not "0FF" < "100" as text


def test_moto_events_without_a_sequencer_are_ordered_by_their_time_to_the_millisecond(
    lambda_event: Callable[[str], dict[str, Any]],
) -> None:
    # Given moto's event shape (no version, no sequencer) for two uploads within one second
    event = lambda_event("s3-put-moto.json")
    [earlier] = objects_from_event(event)
    event["Records"][0]["eventTime"] = "2026-11-29T05:47:21.957Z"
    [later] = objects_from_event(event)
    etag, lm = earlier.etag, 1795931241.0
    first = earlier.upload_order(run="r-ffff", served_etag=etag, last_modified=lm)
    second = later.upload_order(run="r-0000", served_etag=etag, last_modified=lm)
    # Then the event times place them, to the millisecond
    assert (first.uploaded_at, second.uploaded_at) == ("2026-11-29T05:47:21.956Z", "2026-11-29T05:47:21.957Z")
    assert second.is_after(first)


def test_an_event_replayed_after_a_newer_upload_is_not_taken_for_the_upload_read(
    lambda_event: Callable[[str], dict[str, Any]],
) -> None:
    # Given an unversioned bucket's event of an old upload, read after a newer upload of the key
    [old] = objects_from_event(lambda_event("s3-put-moto.json"))
    newer_upload = 1795935000.0  # an hour later
    # When its order is taken, for the same bytes uploaded again and for other bytes
    same_bytes = old.upload_order(run="r", served_etag=old.etag, last_modified=newer_upload)
    other_bytes = old.upload_order(run="r", served_etag="another-etag", last_modified=newer_upload + 60)
    # Then the object read is placed by its own LastModified, not by the old event's time
    assert same_bytes == UploadOrder(uploaded_at="2026-11-29T06:50:00.000Z", run="r")
    assert other_bytes.uploaded_at == "2026-11-29T06:51:00.000Z"


class _ScanningTable:
    """A jobs table as `bik-sync status` scans it: job items in DynamoDB's typed shape."""

    def __init__(self, items: list[dict[str, str]]) -> None:
        self._items = [{name: {"S": value} for name, value in item.items()} for item in items]

    def get_paginator(self, operation: str) -> Any:
        assert operation == "scan"
        items = self._items

        class _Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return [{"Items": items}]

        return _Pages()


def test_status_of_a_key_shows_the_later_of_two_jobs_uploaded_within_one_second() -> None:
    # Given two jobs of one key uploaded in the same second, the later one's run sorting first
    base = {"bucket": "b", "key": "incoming/x.csv", "started_at": "2026-11-29T06:15:03Z"}
    table = _ScanningTable(
        [
            {**base, "pk": "job#aaa", "run": "20261129T061502Z-ffff", "sequencer": "0055AED6DCD90281E5"},
            {**base, "pk": "job#bbb", "run": "20261129T061502Z-0000", "sequencer": "0055AED6DCD90281F0"},
        ]
    )
    # When status looks for the key's latest job, then it is the later upload's
    latest = JobsTable("jobs", table).latest_for_key("incoming/x.csv")
    assert latest is not None and latest.job_id == "bbb"
