"""Delivery through the whole local stack while BIK misbehaves: nothing lost, nothing counted twice."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bik_sync.jobs import JobStore
from bik_sync.messages import JobMeta, build_work_message, encode_record
from tests.integration.conftest import STACK_ENV, User

pytestmark = pytest.mark.integration


def customers(count: int, seed: int, bad_every: int = 0) -> tuple[bytes, int]:
    """A CSV of unique customers (unique phones and emails); every `bad_every`-th row lacks a last
    name. Returns (body, valid rows)."""
    lines = ["First Name,Last Name,Email,Phone,Tags"]
    valid = 0
    for i in range(count):
        bad = bad_every and i % bad_every == 0
        last = "" if bad else f"Last{i}"
        valid += 0 if bad else 1
        lines.append(f'First{i},{last},c{seed}-{i}@example.in,9{seed:02d}{i:07d},"t{i % 3}"')
    return ("\n".join(lines) + "\n").encode(), valid


def test_every_row_is_accounted_once_under_errors_throttling_resets_and_garbage(user: User) -> None:
    # Given BIK answering 20% errors, 429 bursts, dropped connections, broken 200s (the batch was
    # stored, the reply is garbage), a few hangs, and refusing any batch that holds one poisoned
    # record (the batch must be split to isolate it). 10,000 rows: ~200 requests, so that each kind
    # of fault is all but sure to be served (a 5% one is missed once in 30,000 runs). A piece of a
    # batch fails for good only if all 3 receives x 6 attempts fail (0.42^18, 2 in 10^7): what a
    # receive settled is kept, so a retry sends only the rest.
    body, valid = customers(10_000, seed=7, bad_every=97)
    poisoned = "c7-1500@example.in"
    user.bik(
        "POST",
        "/__emulator/faults",
        {
            "error_rate": 0.2,
            "throttle_rate": 0.1,
            "retry_after_s": 0.2,
            "reset_rate": 0.05,
            "malformed_rate": 0.05,
            "hang_rate": 0.02,
            "poison_value": poisoned,
        },
    )
    # When a file of thousands of rows goes through
    user.upload("incoming/stormy.csv", body)
    report = user.report("reports/incoming/stormy.csv.json", timeout_s=240)
    # Then BIK holds exactly the valid records but the poisoned one, the poisoned one is a reject
    # with BIK's reason, and the report accounts for each of the 10,000 rows once
    assert {u["email"] for u in user.bik("GET", "/__emulator/users")} == {
        f"c7-{i}@example.in" for i in range(10_000) if i % 97
    } - {poisoned}
    assert (report["rows"], report["failed"], report["failed_files"]) == (10_000, 0, [])
    assert report["created"] + report["updated"] == valid - 1
    assert (report["rejected"], report["rejected_by_bik"]) == (10_000 - valid + 1, 1)
    assert report["rows"] == report["created"] + report["updated"] + report["rejected"] + report["failed"]
    rejected_by_bik = [
        json.loads(line)
        for key in report["rejects_files"]
        if key.endswith(".jsonl")
        for line in user.text(key).splitlines()
    ]
    assert [(r["email"], r["_row"], r["_error"]) for r in rejected_by_bik] == [
        (poisoned, 1502, '"userProperties[0].email" contains an invalid value')
    ]
    served = user.bik("GET", "/__emulator/state")["faults_served"]
    assert served["error"] > 0 and served["throttle"] > 0 and served["reset"] > 0 and served["malformed"] > 0
    assert served["poison"] > 0


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.5},
        {"throttle_rate": 0.5, "retry_after_s": 0.2},
        {"reset_rate": 0.4},
        {"malformed_rate": 0.4},
        {"hang_rate": 0.2},
        {"latency_ms": 300},
    ],
    ids=lambda faults: next(iter(faults)),
)
def test_each_fault_alone_still_gets_every_record_in_exactly_once(user: User, faults: dict[str, Any]) -> None:
    # Given BIK showing one kind of trouble
    user.bik("POST", "/__emulator/faults", faults)
    name = next(iter(faults))
    body, valid = customers(400, seed=20 + len(name), bad_every=50)
    # When a file goes through
    user.upload(f"incoming/fault-{name}.csv", body)
    report = user.report(f"reports/incoming/fault-{name}.csv.json", timeout_s=120)
    # Then retries absorbed it: every valid record is in BIK once, and the counts add up
    assert report["rows"] == report["created"] + report["updated"] + report["rejected"] + report["failed"]
    assert (report["rejected"], report["failed"]) == (400 - valid, 0)
    assert user.bik("GET", "/__emulator/state")["users"] == valid


def test_undeliverable_records_land_in_failed_and_can_be_dropped_again(user: User) -> None:
    # Given BIK failing every request
    user.bik("POST", "/__emulator/faults", {"error_rate": 1.0})
    body, _ = customers(5, seed=11)
    user.upload("incoming/doomed.csv", body)
    # When the message has used its last allowed receive
    report = user.report("reports/incoming/doomed.csv.json", timeout_s=90)
    # Then the records are in failed/, counted as failed, and the message is not left for the DLQ
    assert (report["rows"], report["failed"], report["created"]) == (5, 5, 0)
    # And the report says the job failed, and why: BIK's answer, once for all five
    assert report["status"] == "failed"
    assert sum(report["reasons"].values()) == 5 and all("500" in reason for reason in report["reasons"])
    [failed_key] = report["failed_files"]
    lines = [json.loads(line) for line in user.text(failed_key).splitlines()]
    assert [line["_row"] for line in lines] == [2, 3, 4, 5, 6]
    user.wait_queues_idle()
    dlq = user.sqs.get_queue_attributes(
        QueueUrl=user.stack.info["dead_letter_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"
    # And when BIK is back and the failed file is dropped into incoming/ as it is
    user.bik("POST", "/__emulator/faults", {"error_rate": 0.0})
    user.upload("incoming/retry.jsonl", user.text(failed_key).encode())
    again = user.report("reports/incoming/retry.jsonl.json")
    assert (again["rows"], again["created"], again["rejected"], again["failed"]) == (5, 5, 0, 0)


def test_a_retry_sends_only_what_bik_has_not_settled_and_failed_holds_only_the_unconfirmed(
    user: User,
) -> None:
    # Given BIK refusing any batch holding a poisoned record (a 400: the batch is split) and failing
    # every batch holding another record (a 500: it fails on every receive)
    user.bik(
        "POST",
        "/__emulator/faults",
        {"poison_value": "poison@example.in", "fail_value": "outage@example.in"},
    )
    names = ["poison", "fine", "unlucky", "outage"]
    records = [{"firstName": n.title(), "lastName": "Shah", "email": f"{n}@example.in"} for n in names]
    # When a system sends them in one message: the first receive splits it, isolates the poisoned
    # record, gets "fine" in, and fails the half holding "outage"; later receives retry that half only
    message_id = user.send(json.dumps({"userProperties": records}))
    report = user.report(f"reports/sqs/{message_id}.json", timeout_s=90)
    # Then "fine" went in once (never sent again, so never counted as an update), the poisoned record
    # is a reject, and failed/ holds just the two records BIK never confirmed
    assert (report["created"], report["updated"], report["rejected_by_bik"], report["failed"]) == (1, 0, 1, 2)
    state = user.bik("GET", "/__emulator/state")
    tries = int(STACK_ENV["BIK_MAX_RECEIVE_COUNT"]) * int(STACK_ENV["BIK_MAX_ATTEMPTS"])
    assert (state["created"], state["updated"], state["faults_served"]["fail"]) == (1, 0, tries)
    [failed_key] = report["failed_files"]
    failed = [json.loads(line) for line in user.text(failed_key).splitlines()]
    assert [(line["email"], line["_row"]) for line in failed] == [
        ("unlucky@example.in", 3),
        ("outage@example.in", 4),
    ]
    [rejects_key] = report["rejects_files"]
    [reject] = [json.loads(line) for line in user.text(rejects_key).splitlines()]
    assert (reject["email"], reject["_row"]) == ("poison@example.in", 1)


def test_a_record_holding_a_lone_surrogate_is_rejected_alone_and_its_reject_reads_back(user: User) -> None:
    # Given a message whose first record holds a lone surrogate (valid JSON text, not valid UTF-8)
    records = [
        {"firstName": "\ud800", "lastName": "Shah", "email": "odd@example.in"},
        {"firstName": "Asha", "lastName": "Shah", "email": "asha@example.in"},
    ]
    message_id = user.send(json.dumps({"userProperties": records}))
    # When it is delivered
    report = user.report(f"reports/sqs/{message_id}.json")
    # Then that record is a reject with the reason, written so that it reads back as it came
    assert (report["created"], report["rejected_invalid"], report["failed"]) == (1, 1, 0)
    [rejects_key] = report["rejects_files"]
    [reject] = [json.loads(line) for line in user.text(rejects_key).splitlines()]
    assert reject == {
        **records[0],
        "_row": 1,
        "_error": '"firstName" must be valid Unicode text (it holds a lone surrogate)',
    }


def test_rotated_token_is_picked_up_from_secrets_manager(user: User) -> None:
    # Given the secret is rotated in Secrets Manager and BIK now accepts only the new token
    secrets = user.stack.client("secretsmanager")
    secrets.put_secret_value(
        SecretId=user.stack.info["secret_arn"], SecretString=json.dumps({"token": "new-token"})
    )
    user.bik("POST", "/__emulator/faults", {"rotate_token": "new-token"})
    try:
        body, _ = customers(3, seed=13)
        # When a file arrives (the worker still holds the old token in its cache)
        user.upload("incoming/rotated.csv", body)
        report = user.report("reports/incoming/rotated.csv.json")
        # Then the 401 makes it refetch the secret once, and the records go in
        assert (report["created"], report["failed"]) == (3, 0)
        assert user.bik("GET", "/__emulator/state")["faults_served"]["unauthorized"] >= 1
    finally:
        # The emulator's reset restores its first token; the secret must match it again.
        secrets.put_secret_value(SecretId=user.stack.info["secret_arn"], SecretString=_default_token())


def _default_token() -> str:
    from bik_local.emulator import DEFAULT_TOKEN

    return DEFAULT_TOKEN


def test_only_a_crash_leaves_a_message_for_the_dead_letter_queue(user: User) -> None:
    # Given a batch of a real job whose report cannot be written (its bucket is gone): the worker crashes
    jobs = JobStore(user.stack.info["jobs_table"], user.stack.client("dynamodb"))
    jobs.start("crash-job", bucket="no-such-bucket", key="incoming/crash.csv", source="s3", lease_s=60)
    jobs.finish_ingest("crash-job", rows=1, rejected=0, batches=1)
    record = {"firstName": "Dlq", "lastName": "Case", "email": "dlq.case@example.in"}
    meta = JobMeta(job_id="crash-job", bucket="no-such-bucket", key="incoming/crash.csv", batch=1, rows=(2,))
    # Signed with the stack's key, as ingest signs it: only then is it the job's batch
    key = user.stack.client("secretsmanager").get_secret_value(SecretId=user.stack.info["signing_secret_arn"])
    body = json.loads(build_work_message([encode_record(record)], meta, key["SecretString"].encode()))
    user.send(json.dumps(body))
    # When SQS has delivered it as often as the redrive policy allows
    dlq_url = user.stack.info["dead_letter_queue_url"]
    deadline = time.monotonic() + 60
    waiting = "0"
    while time.monotonic() < deadline and waiting == "0":
        time.sleep(1)
        attrs = user.sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        waiting = attrs["Attributes"]["ApproximateNumberOfMessages"]
    # Then the message waits in the DLQ for a redrive, untouched, and its batch was counted once
    assert waiting == "1"
    [message] = user.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=1)["Messages"]
    assert json.loads(message["Body"]) == body
    user.sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    state = jobs.get("crash-job")
    assert state is not None and (state.batches_done, state.created) == (1, 1)
    assert user.bik("GET", "/__emulator/state")["records_received"] == 1  # redeliveries sent nothing again


def test_a_sender_cannot_attach_records_to_a_job_by_naming_it(user: User) -> None:
    # Given a message from another system whose job field names a job, unsigned
    body = {
        "userProperties": [{"firstName": "Eve", "lastName": "Forger", "email": "eve@example.in"}],
        "job": {"id": "no-such-job", "bucket": user.bucket, "key": "incoming/x.csv", "batch": 1, "rows": [2]},
    }
    message_id = user.send(json.dumps(body))
    # Then it is that system's message: a job of its own with its own report, and no job is counted by it
    report = user.report(f"reports/sqs/{message_id}.json", timeout_s=30)
    assert (report["rows"], report["created"], report["status"]) == (1, 1, "complete")
    jobs = JobStore(user.stack.info["jobs_table"], user.stack.client("dynamodb"))
    assert jobs.get("no-such-job") is None
