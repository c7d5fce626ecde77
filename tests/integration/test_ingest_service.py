"""The ingest service called directly, on a bucket without notifications, against moto's server."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from bik_local.stack import RunningStack
from bik_sync.clock import Deadline
from bik_sync.ingest import IngestDeps, ingest_deps, ingest_event
from bik_sync.settings import IngestSettings
from tests.integration.conftest import User

pytestmark = pytest.mark.integration

QUIET_BUCKET = "bik-sync-direct-calls"


@pytest.fixture(scope="module")
def deps(stack: RunningStack) -> IngestDeps:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=QUIET_BUCKET)
    settings = IngestSettings(
        work_queue_url=stack.info["work_queue_url"],
        jobs_table_name=stack.info["jobs_table"],
        job_signing_secret_id=stack.info["signing_secret_arn"],
    )
    return ingest_deps(
        settings,
        s3=s3,
        sqs=stack.client("sqs"),
        dynamodb=stack.client("dynamodb"),
        secretsmanager=stack.client("secretsmanager"),
    )


@pytest.fixture(scope="module")
def s3(stack: RunningStack) -> Any:
    return stack.client("s3")


def put_event(key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": QUIET_BUCKET}, "object": {"key": key}},
            }
        ]
    }


def test_ingest_stops_cleanly_when_the_invocation_runs_out_of_time(
    s3: Any, deps: IngestDeps, user: User
) -> None:
    # Given a 3,000-row file and an invocation with little time left after the first thousand rows
    lines = ["First Name,Last Name,Email"] + [f"F{i},L{i},time{i}@example.in" for i in range(30_000)]
    s3.put_object(Bucket=QUIET_BUCKET, Key="incoming/huge.csv", Body="\n".join(lines).encode())
    clock = iter([900_000] + [120_000] * 3 + [30_000] * 2000)
    # When ingest runs
    [result] = ingest_event(put_event("incoming/huge.csv"), deps, Deadline(lambda: next(clock)))
    # Then it stops at a row boundary, sends what it read, and its report says where it stopped
    assert 0 < result.rows < 30_000
    body = user.stack.wait_for_object("reports/incoming/huge.csv.json", 60, bucket=QUIET_BUCKET)
    assert body is not None
    report = json.loads(body)
    assert report["status"] == "incomplete"
    assert f"stopped before row {result.rows + 2}:" in report["error"]
    assert (
        report["rows"]
        == report["created"] + report["updated"] + report["rejected"] + report["failed"]
        == result.rows
    )


def test_a_second_event_for_the_same_object_version_is_a_duplicate(s3: Any, deps: IngestDeps) -> None:
    s3.put_object(
        Bucket=QUIET_BUCKET, Key="incoming/twice.csv", Body=b"First Name,Last Name,Email\nA,B,a@b.in\n"
    )
    first = ingest_event(put_event("incoming/twice.csv"), deps)
    second = ingest_event(put_event("incoming/twice.csv"), deps)
    assert [r.status for r in first + second] == ["queued", "duplicate"]


def test_objects_outside_incoming_and_events_of_other_shapes_are_ignored(deps: IngestDeps) -> None:
    assert [r.status for r in ingest_event(put_event("reports/x.json"), deps)] == ["skipped"]
    assert ingest_event({"detail-type": "Object Created"}, deps) == []


def test_a_mapping_file_in_s3_maps_a_crm_export(s3: Any, deps: IngestDeps, user: User) -> None:
    # Given a CRM export with its own column names, and a mapping file for it in the bucket
    s3.put_object(
        Bucket=QUIET_BUCKET,
        Key="mappings/crm.json",
        Body=json.dumps({"Given": "firstName", "Family": "lastName", "Cell": "phoneNumber"}).encode(),
    )
    mapped = dataclasses.replace(
        deps,
        settings=dataclasses.replace(deps.settings, mapping_uri=f"s3://{QUIET_BUCKET}/mappings/crm.json"),
    )
    s3.put_object(
        Bucket=QUIET_BUCKET,
        Key="incoming/crm.csv",
        Body=b"Given,Family,Cell,Loyalty Tier\nTara,Bose,9830012345,gold\n",
    )
    # When it is ingested
    [result] = ingest_event(put_event("incoming/crm.csv"), mapped)
    # Then the mapped record reaches BIK, and the unmapped column is listed as ignored
    body = user.stack.wait_for_object("reports/incoming/crm.csv.json", 60, bucket=QUIET_BUCKET)
    assert body is not None
    report = json.loads(body)
    assert (result.rows, report["created"], report["ignored_columns"]) == (1, 1, ["Loyalty Tier"])
    [stored] = user.bik("GET", "/__emulator/users")
    assert (stored["firstName"], stored["phoneNumber"]) == ("Tara", "+919830012345")


def test_a_missing_mapping_file_makes_an_unreadable_report_that_names_it(s3: Any, deps: IngestDeps) -> None:
    broken = dataclasses.replace(
        deps,
        settings=dataclasses.replace(deps.settings, mapping_uri=f"s3://{QUIET_BUCKET}/mappings/missing.json"),
    )
    s3.put_object(
        Bucket=QUIET_BUCKET, Key="incoming/orphan.csv", Body=b"First Name,Last Name,Email\nA,B,a@b.in\n"
    )
    [result] = ingest_event(put_event("incoming/orphan.csv"), broken)
    report = json.loads(
        s3.get_object(Bucket=QUIET_BUCKET, Key="reports/incoming/orphan.csv.json")["Body"].read()
    )
    assert result.status == report["status"] == "unreadable"
    assert "mappings/missing.json: it does not exist" in report["error"]


def test_a_folder_of_its_own_uses_its_own_mapping_and_the_report_names_it(
    s3: Any, deps: IngestDeps, user: User
) -> None:
    # Given a HubSpot folder with its own mapping, beside a Shopify file that has none
    s3.put_object(
        Bucket=QUIET_BUCKET,
        Key="mappings/hubspot.json",
        Body=json.dumps({"Kontakt": "fullName", "Handy": "phoneNumber"}).encode(),
    )
    s3.put_object(
        Bucket=QUIET_BUCKET,
        Key="incoming/hubspot/2026/week48.csv",
        Body="Kontakt,Handy,Country/Region\nJosé Álvarez,612 345 678,Spain\n".encode(),
    )
    s3.put_object(
        Bucket=QUIET_BUCKET,
        Key="incoming/shopify/export.csv",
        Body=b"First Name,Last Name,Phone\nTara,Bose,9830012345\n",
    )
    user.bik("POST", "/__emulator/reset")
    # When both are ingested
    ingest_event(put_event("incoming/hubspot/2026/week48.csv"), deps)
    ingest_event(put_event("incoming/shopify/export.csv"), deps)
    # Then the HubSpot file used the folder's mapping (the nearest folder with one) and says so,
    # and the Shopify file used the presets alone
    hubspot = json.loads(
        user.stack.wait_for_object("reports/incoming/hubspot/2026/week48.csv.json", 60, bucket=QUIET_BUCKET)
        or "{}"
    )
    shopify = json.loads(
        user.stack.wait_for_object("reports/incoming/shopify/export.csv.json", 60, bucket=QUIET_BUCKET)
        or "{}"
    )
    assert (hubspot["mapping"], hubspot["created"]) == (f"s3://{QUIET_BUCKET}/mappings/hubspot.json", 1)
    assert (shopify["mapping"], shopify["created"]) == ("presets", 1)
    stored = {user_["phoneNumber"]: user_ for user_ in user.bik("GET", "/__emulator/users")}
    assert stored["+34612345678"]["firstName"] == "José"
    assert stored["+34612345678"]["lastName"] == "Álvarez"
    assert "+919830012345" in stored
