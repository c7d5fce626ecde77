from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from bik_sync import signing
from bik_sync.messages import JobMeta, MalformedMessage, build_work_message, encode_record, parse_work_message

KEY = b"k" * 32


def test_work_message_round_trips_records_and_job_metadata_signed_by_ingest() -> None:
    # Given a batch built by ingest
    job = JobMeta(
        job_id="j1", bucket="b", key="incoming/x.csv", batch=3, rows=(2, 5), run="20261201T000000Z-j1"
    )
    body = build_work_message(
        [encode_record({"firstName": "A"}), encode_record({"firstName": "B"})], job, KEY
    )
    # When the worker parses it
    message = parse_work_message(body)
    # Then the body is the API body plus the job, unchanged but for ingest's signature
    assert json.loads(body)["userProperties"] == [{"firstName": "A"}, {"firstName": "B"}]
    assert message.job is not None and replace(message.job, sig="") == job
    assert message.records == [{"firstName": "A"}, {"firstName": "B"}]
    assert signing.verify(KEY, message.job.to_json(), message.job.sig, signing.digest_of(message.records))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda doc: doc["job"].update(batch=4),  # another batch of the job
        lambda doc: doc["job"].update(id="j2"),  # another job
        lambda doc: doc["userProperties"].append({"firstName": "C"}),  # a record slipped in
        lambda doc: doc["userProperties"][0].update(firstName="Z"),  # a record changed
        lambda doc: doc["job"].pop("sig"),  # no signature at all
    ],
)
def test_a_signature_holds_only_for_the_job_and_records_ingest_signed(tamper: Callable[[Any], None]) -> None:
    job = JobMeta(job_id="j1", bucket="b", key="incoming/x.csv", batch=3, rows=(2, 5))
    doc = json.loads(
        build_work_message([encode_record({"firstName": "A"}), encode_record({"firstName": "B"})], job, KEY)
    )
    tamper(doc)
    if len(doc["userProperties"]) != len(doc["job"]["rows"]):  # keep the message well-formed
        doc["job"]["rows"].append(9)
    message = parse_work_message(json.dumps(doc))
    assert message.job is not None
    assert not signing.verify(KEY, message.job.to_json(), message.job.sig, signing.digest_of(message.records))
    # And a key other than ingest's never signs a valid one either
    assert not signing.verify(
        b"x" * 32, message.job.to_json(), message.job.sig, signing.digest_of(message.records)
    )


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


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "message body is nested too deep to be user properties"),
        ('{"userProperties": [{"id": ' + "1" * 4_301 + "}]}", "more than 4,300 digits"),
        (
            '{"userProperties": [{"a": 1,}]}',
            "not JSON: Illegal trailing comma before end of object at line 1, column 28",
        ),
    ],
)
def test_the_parser_limits_still_say_why(body: str, reason: str) -> None:
    # Given a body past a parser limit (orjson refuses it; json's judgement is kept)
    with pytest.raises(MalformedMessage, match=reason):
        parse_work_message(body)


def test_numbers_keep_their_json_type_and_value() -> None:
    # Given a record with an integer beyond 64 bits (orjson alone would make it a float) and a float
    message = parse_work_message('[{"n": 18446744073709551616, "f": 0.1, "i": 7}]')
    # Then they arrive as json reads them
    assert message.records == [{"n": 2**64, "f": 0.1, "i": 7}]
    assert [type(v) for v in message.records[0].values()] == [int, float, int]
