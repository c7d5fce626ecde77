"""Rows of one person in one file, through ingest and the worker on the in-memory fakes: merged in
file order, sent once, counted as `duplicates` in a report that still balances."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bik_sync.ingest import ingest_object
from bik_sync.ports import StoredObject
from bik_sync.s3_events import S3ObjectRef
from tests.fakes import InMemoryObjectStore
from tests.unit.test_worker import BUCKET, World

HEADER = "First Name,Last Name,Email,Phone,City,State"


def balanced(report: dict[str, Any]) -> bool:
    delivered = report["created"] + report["updated"]
    return bool(report["rows"] == delivered + report["rejected"] + report["failed"] + report["duplicates"])


def upload(world: World, key: str, lines: list[str]) -> S3ObjectRef:
    world.objects.put_bytes(BUCKET, key, "\n".join([HEADER, *lines]).encode(), "text/csv")
    return S3ObjectRef(bucket=BUCKET, key=key)


def sent_records(world: World) -> list[dict[str, Any]]:
    return [record for request in world.bik.requests for record in request]


def test_a_person_in_three_batches_is_sent_once_with_the_files_last_values_and_counted_as_duplicates() -> (
    None
):
    # Given 250 rows (batches of 100) where rows 2, 150 and 251 are Asha, and a row that is rejected
    world = World()
    lines = [f"F{i},L{i},p{i}@example.in,,Pune," for i in range(250)]
    lines[0] = "Asha,Rao,asha@example.in,9820000001,Pune,"
    lines[148] = "Asha,Rao,,9820000001,,MH"  # the same phone; no email or city: they stay
    lines[249] = "Asha,Rao,asha@example.in,,Mumbai,"  # the same email; a new city
    ref = upload(world, "incoming/dupes.csv", [*lines, "Nobody,Known,,,Pune,"])
    # When it is ingested and every work message delivered
    result = ingest_object(ref, world.ingest)
    for n, message in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", message)
    # Then Asha went to BIK once, merged in file order, at row 251's place in the last batch
    ashas = [r for r in sent_records(world) if r["firstName"] == "Asha"]
    assert ashas == [
        {
            "firstName": "Asha",
            "lastName": "Rao",
            "email": "asha@example.in",
            "phoneNumber": "+919820000001",
            "city": "Mumbai",
            "state": "MH",
        }
    ]
    last = json.loads(world.queue.bodies[-1])
    assert last["job"]["rows"][-1] == 251 and last["userProperties"][-1]["firstName"] == "Asha"
    # And the report counts the two merged rows, and every row is accounted for
    report = world.report("reports/incoming/dupes.csv.json")
    assert (report["rows"], report["created"], report["rejected"], report["duplicates"]) == (251, 248, 1, 2)
    assert report["status"] == "complete" and balanced(report)
    assert result.rows == 251 and len(sent_records(world)) == 248


def test_a_file_of_distinct_people_reports_no_duplicates_when_ingested() -> None:
    # Given three different people
    world = World()
    ref = upload(world, "incoming/plain.csv", [f"F{i},L{i},p{i}@example.in,,Pune," for i in range(3)])
    # When it is ingested and delivered
    ingest_object(ref, world.ingest)
    for n, message in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", message)
    # Then all three are sent and the report says duplicates 0
    report = world.report("reports/incoming/plain.csv.json")
    assert (report["created"], report["duplicates"]) == (3, 0) and balanced(report)


class _ReplacedAfterFirstRead(InMemoryObjectStore):
    """An object store where someone uploads the input again while the first pass reads it."""

    def open(self, bucket: str, key: str, *, version_id: str = "", start: int = 0) -> StoredObject:
        opened = super().open(bucket, key, version_id=version_id, start=start)
        if key.startswith("incoming/"):
            self.put_bytes(
                bucket, key, b"First Name,Last Name,Email\nNew,Upload,new@example.in\n", "text/csv"
            )
        return opened


def test_the_job_fails_with_a_clear_error_and_sends_nothing_when_the_input_is_replaced_between_passes() -> (
    None
):
    # Given an input that is replaced after ingest first opened it (an unversioned bucket: by ETag)
    world = World()
    world.objects = _ReplacedAfterFirstRead()
    world.ingest = replace(world.ingest, objects=world.objects)
    ref = upload(world, "incoming/moving.csv", ["A,B,a@example.in,,Pune,"])
    # When it is ingested
    result = ingest_object(ref, world.ingest)
    # Then nothing is sent, and the report says the file changed while it was read
    report = world.report("reports/incoming/moving.csv.json")
    assert (result.status, world.queue.bodies) == ("unreadable", [])
    assert report["status"] == "unreadable" and "replaced while it was being read" in report["error"]
