"""No phone, email, name or token in any log line the functions write (CloudWatch, locally)."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest

from bik_local.emulator import DEFAULT_TOKEN
from bik_sync.records import check_record
from tests.integration.conftest import User

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "customers.csv"


def personal_values() -> set[str]:
    """Every email, phone (as written and as normalised) and name in the sample file."""
    values: set[str] = set()
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            for column in ("Email", "Phone", "Default Address Phone", "First Name", "Last Name"):
                value = row.get(column, "").strip().lstrip("'")
                if len(value) >= 4:
                    values.add(value.lower())
            record, _ = check_record(
                {"firstName": "x", "lastName": "y", "phoneNumber": row["Phone"].lstrip("'")}
            )
            if record and record.get("phoneNumber"):
                values.add(record["phoneNumber"])
    return values


def test_no_personal_data_or_token_reaches_the_logs(user: User) -> None:
    # Given a workload that touches every log path: the sample file with its bad rows, a message from
    # another system, a record BIK refuses, retries, a token rotation that forces a 401, a file
    # without a header row, an unreadable file and a malformed message
    secrets = user.stack.client("secretsmanager")
    rotated = "cHJpdmFjeS1rZXk6cHJpdmFjeS1zZWNyZXQ="
    logged_before = user.stack.log_path.stat().st_size
    user.bik(
        "POST",
        "/__emulator/faults",
        {
            "error_rate": 0.3,
            "throttle_rate": 0.2,
            "retry_after_s": 0.1,
            "poison_value": "kabir.shah@example.in",
        },
    )
    user.upload("incoming/privacy-sample.csv", SAMPLE.read_bytes())
    user.report("reports/incoming/privacy-sample.csv.json", timeout_s=120)
    # The worker now holds the token in its cache: rotate it, so that the next call gets a 401
    secrets.put_secret_value(
        SecretId=user.stack.info["secret_arn"], SecretString=json.dumps({"token": rotated})
    )
    user.bik("POST", "/__emulator/faults", {"rotate_token": rotated})
    message_id = user.send(
        json.dumps(
            {
                "userProperties": [
                    {"firstName": "Kabir", "lastName": "Shahbazian", "email": "kabir.shah@example.in"},
                    {"firstName": "Ishaan", "lastName": "Venkataraman", "phoneNumber": "+91 98450 77777"},
                ]
            }
        )
    )
    user.send("{broken json with ishaan.v@example.in")
    user.upload("incoming/privacy-headerless.csv", b"Zoravar,Dhillon,+919811122233,zoravar.d@example.in\n")
    user.upload("incoming/privacy-garbage.csv", b"\x00\x01binary zoravar.d@example.in \xff\xfe")
    user.report(f"reports/sqs/{message_id}.json", timeout_s=60)
    user.report("reports/incoming/privacy-headerless.csv.json")
    user.report("reports/incoming/privacy-garbage.csv.json")
    user.wait_queues_idle()
    secrets.put_secret_value(SecretId=user.stack.info["secret_arn"], SecretString=DEFAULT_TOKEN)

    # When every line the stack logged is read (this test's own lines, and those of the tests before)
    log = user.stack.log_path.read_text(encoding="utf-8", errors="replace").lower()
    own = user.stack.log_path.read_bytes()[logged_before:].decode("utf-8", errors="replace").lower()
    assert "batch done" in own  # the scan reads the functions' own lines, not an empty file

    # And the job's lines carry its job id, which is also the correlation id across both functions
    job_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"level"' in line]
    done = [
        line
        for line in job_lines
        if line["message"] in {"ingest finished", "batch done", "delivery finished"}
    ]
    assert done and all(line.get("job_id") and line.get("correlation_id") == line["job_id"] for line in done)
    assert "fetched the token again" in own  # this test's 401 path ran, and its lines are scanned too

    # Then none of the personal values, nor the token or its parts, appears
    secret_parts = base64.b64decode(DEFAULT_TOKEN).decode().split(":")
    forbidden = personal_values() | {
        "zoravar",
        "dhillon",
        "+919811122233",
        "9811122233",
        "zoravar.d@example.in",
        rotated.lower(),
        "privacy-key",
        "privacy-secret",
        "kabir.shah@example.in",
        "shahbazian",
        "venkataraman",
        "+919845077777",
        "98450 77777",
        "ishaan.v@example.in",
        DEFAULT_TOKEN.lower(),
        *secret_parts,
    }
    leaks = sorted(
        value
        for value in forbidden
        if re.search(r"(?<![\w@.+])" + re.escape(value.lower()) + r"(?![\w@.])", log)
    )
    assert leaks == [], f"{len(leaks)} personal values or secrets in the logs, e.g. {leaks[:3]}"
