"""Files and messages made to hurt, through the whole local stack: each ends in a report that says why."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from tests.integration.conftest import User

pytestmark = pytest.mark.integration

HEADER = b"First Name,Last Name,Email\n"


def balanced(report: dict[str, int]) -> bool:
    delivered = report["created"] + report["updated"]
    return report["rows"] == delivered + report["rejected"] + report["failed"] + report["duplicates"]


def test_a_forged_message_naming_a_live_jobs_batch_is_a_job_of_its_own_and_steals_nothing(user: User) -> None:
    # Given BIK slow enough that a file's one batch is still out when another system's message arrives
    user.bik("POST", "/__emulator/faults", {"latency_ms": 1500})
    user.upload(
        "incoming/victim.csv",
        HEADER + b"".join(b"V%d,L%d,victim%d@example.in\n" % (n, n, n) for n in range(3)),
    )
    deadline = time.monotonic() + 30
    job: dict[str, object] | None = None
    while job is None and time.monotonic() < deadline:
        items = user.stack.client("dynamodb").scan(TableName=user.stack.info["jobs_table"])["Items"]
        found = [item for item in items if item.get("key", {}).get("S") == "incoming/victim.csv"]
        if found:
            job = {
                "id": found[0]["pk"]["S"].removeprefix("job#"),
                "run": found[0].get("run", {}).get("S", ""),
            }
        time.sleep(0.2)
    assert job is not None
    # When the forger names that job's batch 1, with a signature it had to guess
    forged = {
        "userProperties": [{"firstName": "Mallory", "lastName": "Forger", "email": "mallory@example.in"}],
        "job": {
            **job,
            "bucket": user.bucket,
            "key": "incoming/victim.csv",
            "batch": 1,
            "rows": [2],
            "sig": "0" * 64,
        },
    }
    message_id = user.send(json.dumps(forged))
    # Then the forged record is a job of its own, and the file's report counts its own three rows
    forged_report = user.report(f"reports/sqs/{message_id}.json", timeout_s=60)
    victim = user.report("reports/incoming/victim.csv.json", timeout_s=60)
    assert (forged_report["rows"], forged_report["created"]) == (1, 1)
    assert (victim["rows"], victim["created"], victim["status"]) == (3, 3, "complete")
    emails = {stored.get("email") for stored in user.bik("GET", "/__emulator/users")}
    assert {"victim0@example.in", "victim1@example.in", "victim2@example.in", "mallory@example.in"} <= emails


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        (
            "deep.json",
            b"["
            + b"[" * 100_000
            + b"]" * 100_000
            + b',{"firstName":"C","lastName":"D","email":"c@example.in"}]',
            None,
        ),
        (
            "hugeint.jsonl",
            b'{"firstName":"A","lastName":"B","email":"a@example.in","id":' + b"1" * 5000 + b"}\n"
            b'{"firstName":"C","lastName":"D","email":"c@example.in"}\n',
            None,
        ),
        (
            "longline.csv.gz",
            gzip.compress(HEADER + b"A,B," + "é".encode() * (3 << 20) + b"\nC,D,c@example.in\n", mtime=0),
            None,
        ),
        ("blank.csv.gz", gzip.compress(HEADER + b"\n" * 2_000_000 + b"C,D,c@example.in\n", mtime=0), None),
    ],
)
def test_a_hostile_file_ends_in_a_report_with_its_reason(
    user: User, name: str, body: bytes, expected: str | None
) -> None:
    user.upload(f"incoming/hostile/{name}", body)
    report = user.report(f"reports/incoming/hostile/{name}.json", timeout_s=120)
    assert balanced(report)
    if expected:
        assert report["status"] in ("incomplete", "unreadable") and expected in report["error"]
    else:
        # The bad line (or element) is one reject with its reason; the good row after it goes in
        assert (report["status"], report["created"]) == ("complete", 1)
        assert report["rejected"] == (0 if name.startswith("blank") else 1)


def test_a_header_of_fifty_thousand_columns_gets_a_report_that_lists_the_first_ones(user: User) -> None:
    header = b"First Name,Last Name,Email," + b",".join(b"Extra %d" % n for n in range(50_000)) + b"\n"
    user.upload("incoming/hostile/wide.csv", header + b"A,B,a@example.in" + b"," * 50_000 + b"\n")
    report = user.report("reports/incoming/hostile/wide.csv.json", timeout_s=120)
    assert (report["created"], report["ignored_column_count"], len(report["ignored_columns"])) == (
        1,
        50_000,
        100,
    )


def test_smaller_broken_promises_each_end_in_a_report_that_says_why(user: User) -> None:
    # Given a file whose row 7,002 holds NUL bytes far past the first 64 KB, whose row 3 holds a
    # cell of 2 MB on one line, and whose names are not ASCII
    rows = [b"M\xc3\xbcller,Schmidt,m%d@example.in\n" % n for n in range(7000)]
    body = HEADER + rows[0] + b"Big,Cell," + b"x" * (2 << 20) + b"\n" + b"".join(rows[1:])
    body += b"Nul\x00,Row,nul@example.in\n"
    user.upload("incoming/hostile/kunden-müller.csv", body)
    report = user.report("reports/incoming/hostile/kunden-müller.csv.json", timeout_s=120)
    # Then both bad rows are rejects with their reasons, the rest go in, and the report is UTF-8
    assert (report["rows"], report["created"], report["rejected"]) == (7002, 7000, 2)
    assert any("NUL characters" in reason for reason in report["reasons"])
    assert any("longer than" in reason for reason in report["reasons"])
    key = "reports/incoming/hostile/kunden-müller.csv.json"
    raw = user.s3.get_object(Bucket=user.bucket, Key=key)["Body"].read()
    assert "kunden-müller".encode() in raw  # reports are written as UTF-8, not as \\u00fc
    stored = {u.get("lastName") for u in user.bik("GET", "/__emulator/users")}
    assert "Schmidt" in stored and not any("\x00" in str(name) for name in stored)


def test_a_malformed_message_gets_its_report_at_the_documented_key(user: User) -> None:
    message_id = user.send("{not json")
    report = user.report(f"reports/sqs/{message_id}.json", timeout_s=60)
    assert (report["status"], report["rows"]) == ("unreadable", 0)
    assert report["rejects_files"] == [f"rejects/sqs/{message_id}.malformed.json"]
