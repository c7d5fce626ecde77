from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bik_sync.messages import JobMeta, MalformedMessage, build_work_message, encode_record, parse_work_message


def test_work_message_round_trips_records_and_job_metadata() -> None:
    # Given a batch built by ingest
    job = JobMeta(job_id="j1", bucket="b", key="incoming/x.csv", batch=3, rows=(2, 5))
    body = build_work_message([encode_record({"firstName": "A"}), encode_record({"firstName": "B"})], job)
    # When the worker parses it
    message = parse_work_message(body)
    # Then the body is the API body plus the job, unchanged
    assert json.loads(body)["userProperties"] == [{"firstName": "A"}, {"firstName": "B"}]
    assert message.job == job
    assert message.records == [{"firstName": "A"}, {"firstName": "B"}]


def test_sample_event_bodies_parse(lambda_event: Callable[[str], dict[str, Any]]) -> None:
    first, second = (parse_work_message(r["body"]) for r in lambda_event("sqs-work-message.json")["Records"])
    assert first.job is not None and first.job.rows == (2, 3)
    assert second.job is None and len(second.records) == 1


@pytest.mark.parametrize(
    ("body", "records"),
    [
        ('[{"firstName": "A"}]', 1),  # a bare array
        ('{"firstName": "A", "lastName": "B"}', 1),  # a single record
        ('{"userProperties": [{}, {}]}', 2),  # the API body from another system
    ],
)
def test_other_systems_may_send_an_array_a_record_or_the_api_body(body: str, records: int) -> None:
    message = parse_work_message(body)
    assert len(message.records) == records
    assert message.job is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ('"text"', "must be a JSON object or array"),
        ('{"userProperties": {}}', "must be an array"),
        ('{"userProperties": []}', "empty"),
        ('{"userProperties": [{}], "job": {"id": "j"}}', '"job.bucket" is required'),
        (
            '{"userProperties": [{}], "job": {"id": "j", "bucket": "b", "key": "k", "batch": "x"}}',
            "whole numbers",
        ),
        (
            '{"userProperties": [{}], "job": {"id": "j", "bucket": "b", "key": "k", "batch": 1, "rows": []}}',
            "one row number per record",
        ),
    ],
)
def test_malformed_messages_say_why(body: str, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_work_message(body)
