"""Rows of one person in one file, through ingest and the worker on the in-memory fakes: merged in
file order, sent once, counted as `duplicates` in a report that still balances."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bik_sync.checkpoint import Checkpoint
from bik_sync.clock import Deadline
from bik_sync.continuation import ingest_or_continue
from bik_sync.ingest import ingest_object
from bik_sync.ports import StoredObject
from bik_sync.s3_events import S3ObjectRef
from tests.fakes import InMemoryObjectStore, InMemoryWorkQueue
from tests.unit.test_continuation import continue_queue, short_invocation, sqs_event
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


def test_an_input_replaced_while_it_is_read_is_sent_as_first_read_when_pass_one_kept_its_rows() -> None:
    # Given an input that is replaced after ingest first opened it (an unversioned bucket: by ETag)
    world = World()
    world.objects = _ReplacedAfterFirstRead()
    world.ingest = replace(world.ingest, objects=world.objects)
    ref = upload(world, "incoming/moving.csv", ["A,B,a@example.in,,Pune,"])
    # When it is ingested, pass 2 sending the rows pass 1 built (spill.py): the object is read once
    result = ingest_object(ref, world.ingest)
    # Then the upload that was read is sent, all of it, and none of the one that replaced it
    assert (result.status, result.rows) == ("queued", 1)
    assert [record["email"] for _, record in sent_in_order(world)] == ["a@example.in"]


def test_the_job_fails_with_a_clear_error_and_sends_nothing_when_the_input_is_replaced_between_passes() -> (
    None
):
    # Given an input that is replaced after ingest first opened it, and no room to keep pass 1's rows
    world = World()
    world.objects = _ReplacedAfterFirstRead()
    world.ingest = replace(world.ingest, objects=world.objects, spill_bytes=0)
    ref = upload(world, "incoming/moving.csv", ["A,B,a@example.in,,Pune,"])
    # When it is ingested (pass 2 opens the object again)
    result = ingest_object(ref, world.ingest)
    # Then nothing is sent, and the report says the file changed while it was read
    report = world.report("reports/incoming/moving.csv.json")
    assert (result.status, world.queue.bodies) == ("unreadable", [])
    assert report["status"] == "unreadable" and "replaced while it was being read" in report["error"]


# A file read in five invocations (999 rows each: three for the first pass, three that send, the
# third doing both), with people whose rows fall in different invocations.
PARTS_HEADER = "First Name,Last Name,Email,Phone,City"
PARTS_ROWS = 2500


def parts_file_lines() -> list[str]:
    lines = [f"F{i},L{i},{'' if i % 10 == 0 else f'p{i}@example.in'},,Pune" for i in range(PARTS_ROWS)]
    # Asha: one row in each invocation that sends; a new surname and city, then an email (the city stays)
    lines[101] = "Asha,Rao,,9820000001,"
    lines[1501] = "Asha,Iyer,,9820000001,Mumbai"
    lines[2401] = "Asha,Iyer,asha@example.in,9820000001,"
    # Ravi: one person only through row 1201, which shares his phone and his later email
    lines[51] = "Ravi,Das,,9820000002,Kochi"
    lines[1201] = "Ravi,Das,ravi@example.in,9820000002,"
    lines[2301] = "Ravi,Das,ravi@example.in,,Delhi"
    # Mina: both rows in one invocation
    lines[11] = "Mina,Sen,,9820000003,"
    lines[21] = "Mina,Sen,mina@example.in,9820000003,Goa"
    return lines


def upload_parts_file(world: World, key: str) -> S3ObjectRef:
    body = "\n".join([PARTS_HEADER, *parts_file_lines()]).encode()
    world.objects.put_bytes(BUCKET, key, body, "text/csv")
    return S3ObjectRef(bucket=BUCKET, key=key)


def sent_in_order(world: World) -> list[tuple[int, dict[str, Any]]]:
    """Every (row, record) the work messages carry, in batch order."""
    messages = [json.loads(body) for body in world.queue.bodies]
    return [pair for m in messages for pair in zip(m["job"]["rows"], m["userProperties"], strict=True)]


def in_parts_world() -> World:
    world = World()
    world.ingest = replace(world.ingest, continue_queue=InMemoryWorkQueue())
    return world


def ingest_in_parts(world: World, ref: S3ObjectRef, invocations: int = 99) -> str:
    """The file ingested, each continuation message an invocation of its own: at most ``invocations``."""
    job_id = ingest_object(ref, world.ingest, short_invocation()).job_id
    handled = 0
    while handled < min(invocations - 1, len(continue_queue(world).bodies)):
        ingest_or_continue(sqs_event(continue_queue(world).bodies[handled]), world.ingest, short_invocation())
        handled += 1
    return job_id


def test_people_whose_rows_fall_in_different_invocations_are_sent_once_as_in_a_one_invocation_read() -> None:
    # Given the same file read in one invocation, and in another world in invocations of 999 rows
    whole, parts = World(), in_parts_world()
    ingest_object(upload_parts_file(whole, "incoming/people.csv"), whole.ingest, Deadline.after(900))
    ingest_in_parts(parts, upload_parts_file(parts, "incoming/people.csv"))
    # Then the records sent, their rows and their order are the one-invocation read's
    assert len(continue_queue(parts).bodies) == 4
    assert sent_in_order(parts) == sent_in_order(whole)
    # And each person is there once, merged in file order, at their last row
    by_name = {record["firstName"]: (row, record) for row, record in sent_in_order(parts)}
    assert by_name["Asha"] == (
        2403,
        {
            "firstName": "Asha",
            "lastName": "Iyer",
            "email": "asha@example.in",
            "phoneNumber": "+919820000001",
            "city": "Mumbai",
        },
    )
    assert by_name["Ravi"][0] == 2303 and by_name["Ravi"][1]["city"] == "Delhi"
    assert by_name["Mina"][0] == 23 and by_name["Mina"][1]["email"] == "mina@example.in"
    assert [r["firstName"] for _, r in sent_in_order(parts)].count("Asha") == 1
    # And once delivered, both reports count the same duplicates and add up
    for world in (whole, parts):
        for n, body in enumerate(world.queue.bodies):
            world.deliver(f"m-{n}", body)
    reports = [w.report("reports/incoming/people.csv.json") for w in (whole, parts)]
    assert [r["duplicates"] for r in reports] == [5, 5]
    assert [r["rows"] for r in reports] == [PARTS_ROWS, PARTS_ROWS]
    assert reports[1]["invocations"] == 5 and reports[1]["status"] == "complete"
    assert all(balanced(r) for r in reports)
    # And no state object is left in the bucket
    assert parts.objects.keys(BUCKET, "state/") == []


@pytest.mark.parametrize("change", ["rewritten", "deleted"])
def test_a_state_object_changed_in_the_bucket_ends_the_job_incomplete_with_the_reason(change: str) -> None:
    # Given the file read in parts, up to the first invocation that sent rows (Asha and Ravi held)
    world = in_parts_world()
    job_id = ingest_in_parts(world, upload_parts_file(world, "incoming/tampered.csv"), invocations=3)
    state = world.jobs.get(job_id)
    assert state is not None
    carried = Checkpoint.from_json(state.checkpoint).merge
    assert (carried.indexing, carried.held, carried.held_rows) == (False, 2, 2)
    # When someone rewrites (same size, other content) or deletes the state object before the next part
    if change == "rewritten":
        stored = world.objects.objects[(BUCKET, carried.key)][0]
        world.objects.put_bytes(BUCKET, carried.key, stored.replace(b"Asha", b"Evil"), "")
    else:
        world.objects.delete(BUCKET, carried.key)
    (result,) = ingest_or_continue(
        sqs_event(continue_queue(world).bodies[2]), world.ingest, short_invocation()
    )
    for n, body in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", body)
    # Then the job ends incomplete, with what was sent, and says why and which rows were not sent
    report = world.report(state.report_key)
    assert result.status == report["status"] == "incomplete"
    assert (
        "not the one ingest wrote" in report["error"]
        if change == "rewritten"
        else "is gone" in report["error"]
    )
    assert "stopped before row 1001" in report["error"]
    assert "2 rows of 2 people, held to be merged with their later rows, were not sent" in report["error"]
    assert "Evil" not in json.dumps(sent_records(world))
    # And the report adds up over the rows it counts (999 read, 2 of them held and not sent)
    assert report["rows"] == 997 and balanced(report)
    assert world.objects.keys(BUCKET, "state/") == []


def test_an_invocation_that_dies_between_its_state_and_its_checkpoint_loses_nothing() -> None:
    # Given the file read in one invocation, and in parts where the second invocation that sends dies
    # after writing its state object, before storing the checkpoint that names it
    whole, parts = World(), in_parts_world()
    ingest_object(upload_parts_file(whole, "incoming/people.csv"), whole.ingest, Deadline.after(900))
    store_checkpoint, stored = parts.jobs.checkpoint, []

    def dies_at_the_fourth(job_id: str, **fields: Any) -> None:
        stored.append(fields["checkpoint"])
        if len(stored) == 4:
            raise RuntimeError("the invocation dies")
        store_checkpoint(job_id, **fields)

    parts.jobs.checkpoint = dies_at_the_fourth  # type: ignore[method-assign]
    ingest_object(upload_parts_file(parts, "incoming/people.csv"), parts.ingest, short_invocation())
    # When SQS delivers the failed invocation's continuation message again
    handled = 0
    while handled < len(continue_queue(parts).bodies):
        body = continue_queue(parts).bodies[handled]
        try:
            ingest_or_continue(sqs_event(body), parts.ingest, short_invocation())
        except RuntimeError:
            continue
        handled += 1
    for world in (whole, parts):
        for n, body in enumerate(world.queue.bodies):
            world.deliver(f"m-{n}", body)
    # Then it carried on from the checkpoint before, whose state object was still there, and BIK got
    # what a one-invocation read sends (the batches sent twice counted once)
    assert len(stored) == 5
    assert sent_records(parts) == sent_records(whole)
    report = parts.report("reports/incoming/people.csv.json")
    assert (report["status"], report["duplicates"], report["rows"]) == ("complete", 5, PARTS_ROWS)
    assert balanced(report) and parts.objects.keys(BUCKET, "state/") == []


def test_without_a_continue_queue_a_first_pass_cut_short_bounds_what_is_sent_so_no_person_is_sent_twice() -> (
    None
):
    # Given 1,500 rows where rows 102 and 1202 are Asha, no continuation queue, and time that is up at
    # the first pass's first check (after 999 rows) but back for the second pass
    world = World()
    lines = [f"F{i},L{i},p{i}@example.in,," for i in range(1500)]
    lines[100] = lines[1200] = "Asha,Rao,asha@example.in,,"
    world.objects.put_bytes(BUCKET, "incoming/cut.csv", "\n".join([PARTS_HEADER, *lines]).encode(), "")
    readings = iter([900_000.0, 0.0])
    # When it is ingested
    result = ingest_object(
        S3ObjectRef(bucket=BUCKET, key="incoming/cut.csv"),
        world.ingest,
        Deadline(lambda: next(readings, 900_000.0)),
    )
    # Then only the rows the first pass read are sent, Asha once, and the job says where it stopped
    ashas = [r for r in sent_records_of(world) if r["firstName"] == "Asha"]
    state = world.jobs.get(result.job_id)
    assert state is not None and len(ashas) == 1
    assert result.rows == 999 == len(sent_records_of(world))
    assert state.details["status"] == "incomplete"
    assert "stopped before row 1001: the file is too large" in state.details["error"]


def sent_records_of(world: World) -> list[dict[str, Any]]:
    return [record for _, record in sent_in_order(world)]
