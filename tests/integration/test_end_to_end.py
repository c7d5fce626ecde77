"""A file dropped in S3 becomes BIK user properties; rejects and reports come back to S3."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from tests.integration.conftest import User

pytestmark = pytest.mark.integration

CSV_HEADER = "First Name,Last Name,Email,Phone,City,Tags\n"


def customers_csv(good: int, bad_rows: str = "") -> bytes:
    lines = [f'Cust{i},Tester{i},cust{i}@example.in,98{i:08d},Mumbai,"vip,2026"\n' for i in range(good)]
    return (CSV_HEADER + "".join(lines) + bad_rows).encode()


def balanced(report: dict[str, int]) -> bool:
    delivered = report["created"] + report["updated"]
    return report["rows"] == delivered + report["rejected"] + report["failed"] + report["duplicates"]


def test_csv_file_becomes_bik_users_and_bad_rows_come_back_as_rejects(user: User) -> None:
    # Given a 250-row export with two bad rows (no last name; no phone, email or id)
    bad = "Asha,,asha@example.in,9876500001,Pune,\nRavi,Kumar,,,Delhi,\n"
    user.upload("incoming/customers.csv", customers_csv(250, bad))
    # When the stack has processed it
    report = user.report("reports/incoming/customers.csv.json")
    # Then every row is accounted for, the good ones are in BIK, and the bad ones are rejects with reasons
    assert report["status"] == "complete"
    assert (report["rows"], report["created"], report["rejected"], report["failed"]) == (252, 250, 2, 0)
    assert balanced(report)
    assert report["batches"] == 3  # 100 + 100 + 50
    assert user.bik("GET", "/__emulator/state")["users"] == 250
    [rejects_key] = report["rejects_files"]
    rejects = list(csv.DictReader(io.StringIO(user.text(rejects_key))))
    assert [r["_row"] for r in rejects] == ["252", "253"]
    assert '"lastName"' in rejects[0]["_error"]
    assert rejects[1]["First Name"] == "Ravi"  # the user's own columns, ready to fix and upload again


def test_rows_of_one_person_in_different_batches_reach_bik_once_with_the_files_later_values(
    user: User,
) -> None:
    # Given 250 rows (batches of 100) whose rows 2 and 250 are one person, who moved from Pune to Delhi
    body = customers_csv(249).decode().replace("cust0@example.in,9800000000,Mumbai", "cust0@example.in,,Pune")
    user.upload("incoming/moved.csv", (body + "Cust0,Tester0,cust0@example.in,,Delhi,\n").encode())
    # When the stack has processed it
    report = user.report("reports/incoming/moved.csv.json")
    # Then the report counts one duplicate and still accounts for every row
    assert (report["rows"], report["created"], report["duplicates"], report["status"]) == (
        250,
        249,
        1,
        "complete",
    )
    assert balanced(report)
    # And BIK holds the person once, with the later city and the tags of the first row, sent once
    people = [u for u in user.bik("GET", "/__emulator/users") if u.get("email") == "cust0@example.in"]
    assert [(p["city"], p["tags"]) for p in people] == [("Delhi", ["vip", "2026"])]
    state = user.bik("GET", "/__emulator/state")
    assert (state["users"], state["records_received"], state["updated"]) == (249, 249, 0)


def test_key_with_spaces_and_unicode_is_ingested_and_reported_under_the_same_name(user: User) -> None:
    key = "incoming/Q3 customers – Mumbai é (final).csv"
    user.upload(key, customers_csv(3))
    report = user.report(f"reports/{key}.json")
    assert report["input"].endswith(key)
    assert (report["rows"], report["created"]) == (3, 3)


def test_jsonl_file_with_api_field_names_is_upserted_and_a_second_upload_updates(user: User) -> None:
    records = [
        {"firstName": "Neha", "lastName": "Joshi", "phoneNumber": "+919820000001"},
        {"firstName": "Arun", "lastName": "Menon", "email": "arun@example.in", "tags": ["a"]},
    ]
    body = "\n".join(json.dumps(r) for r in records).encode()
    user.upload("incoming/people.jsonl", body)
    first = user.report("reports/incoming/people.jsonl.json")
    user.upload("incoming/people-again.jsonl", body)
    second = user.report("reports/incoming/people-again.jsonl.json")
    assert (first["created"], first["updated"]) == (2, 0)
    assert (second["created"], second["updated"]) == (0, 2)


def test_unreadable_file_gets_a_report_with_the_reason_and_sends_nothing(user: User) -> None:
    user.upload("incoming/photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    report = user.report("reports/incoming/photo.csv.json")
    assert report["status"] == "unreadable"
    assert report["error"]
    assert report["rows"] == 0
    assert user.bik("GET", "/__emulator/state")["upsert_requests"] == 0


def test_message_from_another_system_gets_its_own_report_and_rejects(user: User) -> None:
    # Given the API body as another system sends it, one record without any identity
    body = {
        "userProperties": [
            {"firstName": "Meera", "lastName": "Iyer", "phoneNumber": "+919845012345"},
            {"firstName": "Nobody", "lastName": "Known", "city": "Surat"},
        ]
    }
    message_id = user.send(json.dumps(body))
    # When the worker has handled it
    report = user.report(f"reports/sqs/{message_id}.json")
    # Then the valid record is in BIK and the other is a reject with the reason
    assert (report["rows"], report["created"], report["rejected"]) == (2, 1, 1)
    [rejects_key] = report["rejects_files"]
    [reject] = [json.loads(line) for line in user.text(rejects_key).splitlines()]
    assert reject["_row"] == 2 and "phoneNumber" in reject["_error"]


def test_malformed_message_is_rejected_to_s3_and_not_retried(user: User) -> None:
    message_id = user.send("this is not json")
    body = user.stack.wait_for_object(f"rejects/sqs/{message_id}.malformed.json", 30)
    assert body is not None
    document = json.loads(body)
    assert "not JSON" in document["error"]
    user.wait_queues_idle()
    dlq = user.sqs.get_queue_attributes(
        QueueUrl=user.stack.info["dead_letter_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_records_bik_refuses_become_rejects_with_bik_reason(user: User) -> None:
    # Given BIK refuses any batch holding this value (a 400), so the worker must isolate the record
    user.bik("POST", "/__emulator/faults", {"poison_value": "poison@example.in"})
    rows = "Bad,Apple,poison@example.in,9812345678,Goa,\n"
    user.upload("incoming/poisoned.csv", customers_csv(5, rows))
    report = user.report("reports/incoming/poisoned.csv.json")
    assert (report["rows"], report["created"], report["rejected"], report["rejected_by_bik"]) == (6, 5, 1, 1)
    bik_rejects = [k for k in report["rejects_files"] if k.endswith(".jsonl")]
    [reject] = [json.loads(line) for key in bik_rejects for line in user.text(key).splitlines()]
    assert reject["_row"] == 7


def test_redelivered_s3_event_does_not_run_the_job_twice(user: User) -> None:
    # Given a file that has been ingested
    user.upload("incoming/once.csv", customers_csv(4))
    report = user.report("reports/incoming/once.csv.json")
    requests_before = user.bik("GET", "/__emulator/state")["upsert_requests"]
    # When S3 delivers the same notification again
    version = user.s3.head_object(Bucket=user.bucket, Key="incoming/once.csv")["VersionId"]
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": user.bucket},
                    "object": {"key": "incoming/once.csv", "versionId": version},
                },
            }
        ]
    }
    user.sqs.send_message(QueueUrl=user.stack.info["s3_events_queue_url"], MessageBody=json.dumps(event))
    user.wait_queues_idle()
    # Then nothing more is sent to BIK and the report is unchanged
    assert user.bik("GET", "/__emulator/state")["upsert_requests"] == requests_before
    assert user.report("reports/incoming/once.csv.json")["created"] == report["created"] == 4


def test_a_daily_export_under_one_name_keeps_every_days_report_rejects_and_failed_files(user: User) -> None:
    # Given yesterday's export, whose one record BIK could not take, and whose bad row is a reject
    user.bik("POST", "/__emulator/faults", {"error_rate": 1.0})
    user.upload("incoming/daily-export.csv", customers_csv(1, "Asha,,asha@example.in,9876500001,Pune,\n"))
    yesterday = user.report("reports/incoming/daily-export.csv.json", timeout_s=90)
    assert (yesterday["failed"], yesterday["rejected"]) == (1, 1)
    # When today's export is uploaded under the same name, and BIK is back
    user.bik("POST", "/__emulator/faults", {"error_rate": 0.0})
    user.upload("incoming/daily-export.csv", customers_csv(3))
    deadline = time.monotonic() + 60
    today = yesterday
    while today["run"] == yesterday["run"] and time.monotonic() < deadline:
        time.sleep(0.3)
        today = json.loads(user.text("reports/incoming/daily-export.csv.json"))
    # Then the documented key has today's report, and yesterday's files are all still there
    assert today["run"] != yesterday["run"]
    assert (today["rows"], today["created"], today["failed"]) == (3, 3, 0)
    assert json.loads(user.text(yesterday["report"])) == yesterday
    [failed_key] = yesterday["failed_files"]
    [rejects_key] = yesterday["rejects_files"]
    assert len(user.text(failed_key).splitlines()) == 1
    assert "Asha" in user.text(rejects_key)
    assert failed_key.startswith(f"failed/incoming/daily-export.csv/{yesterday['run']}.")
    assert user.keys("reports/incoming/daily-export.csv/") == sorted([yesterday["report"], today["report"]])


def test_identical_bytes_uploaded_again_to_an_unversioned_bucket_get_a_report_of_their_own(
    user: User,
) -> None:
    # Given a bucket without versioning whose uploads notify the stack's ingest, as an existing
    # bucket may (S3 then names an upload by its ETag alone)
    bucket = "bik-sync-local-unversioned"
    sqs, s3 = user.sqs, user.s3
    events_arn = sqs.get_queue_attributes(
        QueueUrl=user.stack.info["s3_events_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": events_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                }
            ]
        },
    )
    key, latest = "incoming/unchanged.csv", "reports/incoming/unchanged.csv.json"
    export = customers_csv(2)
    # When a daily export that did not change is uploaded, then uploaded again over a second later
    s3.put_object(Bucket=bucket, Key=key, Body=export)
    first = json.loads(user.stack.wait_for_object(latest, 60, bucket) or b"{}")
    time.sleep(1.1)  # S3 serves LastModified in whole seconds: a second upload in the same second is one job
    s3.put_object(Bucket=bucket, Key=key, Body=export)
    deadline = time.monotonic() + 60
    second = first
    while second.get("run") == first.get("run") and time.monotonic() < deadline:
        time.sleep(0.3)
        second = json.loads(s3.get_object(Bucket=bucket, Key=latest)["Body"].read())
    # Then each upload is a job with its report, and the latest report is the second upload's
    assert first["status"] == second["status"] == "complete"
    assert first["job_id"] != second["job_id"]
    assert second["uploaded_at"] > first["uploaded_at"]  # moto's events: no sequencer, their time
    assert (second["rows"], second["updated"]) == (2, 2)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"reports/{key}/")
    assert sorted(o["Key"] for p in pages for o in p.get("Contents", [])) == sorted(
        [first["report"], second["report"]]
    )
