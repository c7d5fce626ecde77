"""A file too large for one invocation, read in parts on the in-memory fakes: one report, batches
numbered on without gaps, every row sent once, rejects in part files; forged and stale continuations."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bik_sync import layout
from bik_sync.checkpoint import Checkpoint, build_message, parse_message
from bik_sync.clock import Deadline
from bik_sync.continuation import ingest_or_continue
from bik_sync.ingest import IngestResult, ingest_object
from bik_sync.job_state import job_pk
from bik_sync.merge_state import MergeState
from bik_sync.ports import StoredObject
from bik_sync.s3_events import S3ObjectRef
from bik_sync.spill import Spill
from bik_sync.upsert import process_message
from tests.fakes import InMemoryWorkQueue
from tests.unit.test_worker import BUCKET, SIGNING_KEY, World

HEADER = "First Name,Last Name,Email"
ROWS = 2500  # 999 rows an invocation (each reads up to its first time check)
# The first pass (rows of one person) reads 999, 999 and 502 rows in the first three invocations;
# the third starts sending, and the fourth and fifth send the rest.
INVOCATIONS = 5
SENDING_PARTS = (3, 4, 5)


@pytest.fixture
def world() -> World:
    world = World()
    world.ingest = replace(world.ingest, continue_queue=InMemoryWorkQueue())
    return world


def continue_queue(world: World) -> InMemoryWorkQueue:
    assert isinstance(world.ingest.continue_queue, InMemoryWorkQueue)
    return world.ingest.continue_queue


def short_invocation() -> Deadline:
    """An invocation whose time is up at its first check (after 999 rows), Lambda's 60 s margin kept."""
    readings: Iterator[float] = iter([900_000.0])
    return Deadline(lambda: next(readings, 0.0))


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": str(i), "body": body, "eventSource": "aws:sqs"} for i, body in enumerate(bodies)
        ]
    }


def upload_rows(world: World, key: str, count: int) -> S3ObjectRef:
    # Every tenth row has no email: a reject, in the part file of the invocation that read it.
    lines = [HEADER] + [f"F{i},L{i},{'' if i % 10 == 0 else f'p{i}@example.in'}" for i in range(count)]
    world.objects.put_bytes(BUCKET, key, "\n".join(lines).encode(), "text/csv")
    return S3ObjectRef(bucket=BUCKET, key=key)


def run_continuations(world: World) -> list[IngestResult]:
    """Each continuation message as the queue's event source hands it over: one invocation each."""
    results: list[IngestResult] = []
    handled = 0
    while handled < len(continue_queue(world).bodies):
        body = continue_queue(world).bodies[handled]
        handled += 1
        results += ingest_or_continue(sqs_event(body), world.ingest, short_invocation())
    return results


def deliver_all(world: World) -> None:
    for i, body in enumerate(world.queue.bodies):
        world.deliver(f"m{i}", body)


def test_a_file_read_in_several_invocations_ends_with_one_report_that_adds_up(world: World) -> None:
    # Given a file of 2,500 rows and invocations that each have time for 999 rows
    ref = upload_rows(world, "incoming/big.csv", ROWS)
    # When it is ingested and each continuation message runs an invocation of its own
    first = ingest_object(ref, world.ingest, short_invocation())
    results = [first, *run_continuations(world)]
    # Then five invocations read it (both passes), each handing over but the last, which finishes
    assert [r.status for r in results] == ["continued"] * (INVOCATIONS - 1) + ["queued"]
    assert len(continue_queue(world).bodies) == INVOCATIONS - 1
    # And no report exists before the batches are done, since the job is not complete
    state = world.jobs.get(first.job_id)
    assert state is not None
    assert not world.objects.keys(BUCKET, "reports/")
    # And the batches are numbered 1..k without gaps or repeats, every valid row sent exactly once
    messages = [json.loads(b) for b in world.queue.bodies]
    assert [m["job"]["batch"] for m in messages] == list(range(1, len(messages) + 1))
    sent_rows = [row for m in messages for row in m["job"]["rows"]]
    valid_rows = [i + 2 for i in range(ROWS) if i % 10]  # the file's own row numbers (header is row 1)
    assert sent_rows == valid_rows
    emails = [r["email"] for m in messages for r in m["userProperties"]]
    assert emails == [f"p{i}@example.in" for i in range(ROWS) if i % 10]
    # When the worker delivers every batch
    deliver_all(world)
    # Then one report, written once, adds up over the whole file
    report = world.report(state.report_key)
    assert (report["rows"], report["created"], report["rejected"]) == (ROWS, len(valid_rows), ROWS // 10)
    assert report["rows"] == report["created"] + report["updated"] + report["rejected"] + report["failed"]
    assert report["status"] == "complete"
    assert report["batches"] == len(messages)
    assert report["invocations"] == INVOCATIONS
    # And the rejects are in one part file per invocation that sent rows, named by the invocation,
    # every one listed, each with its own rows
    parts = [layout.ingest_rejects_key(ref.key, state.run, ".csv", part) for part in SENDING_PARTS]
    assert report["rejects_files"] == parts
    rejected_rows = [
        int(line.split(",")[3]) for key in parts for line in world.objects.text(BUCKET, key).splitlines()[1:]
    ]
    assert rejected_rows == [i + 2 for i in range(ROWS) if i % 10 == 0]


def test_a_file_read_in_one_invocation_keeps_its_plain_rejects_file_name(world: World) -> None:
    # Given a small file with a reject
    ref = upload_rows(world, "incoming/small.csv", 20)
    # When it is ingested with time to spare
    result = ingest_object(ref, world.ingest, Deadline.after(900))
    deliver_all(world)
    # Then no continuation is asked for and the rejects file has the name it always had
    state = world.jobs.get(result.job_id)
    assert state is not None
    assert not continue_queue(world).bodies
    assert world.report(state.report_key)["rejects_files"] == [
        layout.ingest_rejects_key(ref.key, state.run, ".csv")
    ]


def test_a_continuation_delivered_twice_reads_no_row_twice(world: World) -> None:
    # Given a file whose first part has been read and handed over
    ref = upload_rows(world, "incoming/twice.csv", 1500)
    first = ingest_object(ref, world.ingest, short_invocation())
    (message,) = continue_queue(world).bodies
    # When the continuation message is delivered twice (SQS delivers at least once)
    again = [ingest_or_continue(sqs_event(message), world.ingest, Deadline.after(900)) for _ in range(2)]
    # Then the second finds the job done and sends nothing
    assert [r.status for (r,) in again] == ["queued", "duplicate"]
    sent_rows = [row for b in world.queue.bodies for row in json.loads(b)["job"]["rows"]]
    assert len(sent_rows) == len(set(sent_rows)) == 1500 - 150
    assert first.job_id == again[0][0].job_id


def test_a_continuation_not_signed_by_ingest_is_refused(world: World) -> None:
    # Given a file whose first part has been read and handed over
    ref = upload_rows(world, "incoming/forged.csv", 1500)
    ingest_object(ref, world.ingest, short_invocation())
    (message,) = continue_queue(world).bodies
    request = parse_message(message, SIGNING_KEY)
    sent = len(world.queue.bodies)
    # When someone sends continuations: unsigned, signed with another key, and one with a field changed
    unsigned = json.dumps({"continue": json.loads(message)["continue"]})
    other_key = build_message(request, b"another-key-of-at-least-32-bytes!!")
    tampered = message.replace(f'"part":{request.part}', f'"part":{request.part + 1}')
    results = ingest_or_continue(sqs_event(unsigned, other_key, tampered), world.ingest)
    # Then every one is refused, and nothing more is read or sent
    assert [r.status for r in results] == ["refused"] * 3
    assert len(world.queue.bodies) == sent


@pytest.mark.parametrize(
    "new_rows", [10, 3000]
)  # shorter than the offset read on from (no such byte), or not
def test_a_continuation_for_an_object_that_changed_ends_the_job_with_the_reason(
    world: World, new_rows: int
) -> None:
    # Given a file in an unversioned bucket whose first pass took two parts, the second of which also
    # sent its first 999 rows, and handed over
    ref = upload_rows(world, "incoming/changed.csv", 1500)
    first = ingest_object(ref, world.ingest, short_invocation())
    ingest_or_continue(sqs_event(continue_queue(world).bodies[0]), world.ingest, short_invocation())
    message = continue_queue(world).bodies[1]
    # When the object is replaced before the continuation runs
    upload_rows(world, "incoming/changed.csv", new_rows)
    (result,) = ingest_or_continue(sqs_event(message), world.ingest, Deadline.after(900))
    deliver_all(world)
    # Then the job ends incomplete with what the first part read, and says why
    assert result.status == "incomplete"
    state = world.jobs.get(first.job_id)
    assert state is not None
    report = world.report(state.report_key)
    assert report["status"] == "incomplete"
    assert report["rows"] == 999
    assert "the input changed" in report["error"]
    assert "stopped before row 1001" in report["error"]
    assert report["rows"] == report["created"] + report["rejected"]


def test_identical_bytes_uploaded_again_between_two_parts_end_the_first_job_with_the_reason(
    world: World,
) -> None:
    # Given a file in an unversioned bucket whose first part has been read and handed over
    ref = upload_rows(world, "incoming/same.csv", 1500)
    first = ingest_object(ref, world.ingest, short_invocation())
    (message,) = continue_queue(world).bodies
    # When the same bytes are uploaded again before the continuation runs (same ETag, a later time)
    upload_rows(world, "incoming/same.csv", 1500)
    (result,) = ingest_or_continue(sqs_event(message), world.ingest, Deadline.after(900))
    # Then the first job ends with what it read and why: the new upload is a job of its own
    assert result.status == "incomplete"
    state = world.jobs.get(first.job_id)
    assert state is not None and "upload time" in str(state.details["error"])


def test_a_job_an_older_release_named_by_its_etag_alone_still_carries_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file whose first part an older release read, naming the job by the ETag alone
    ref = upload_rows(world, "incoming/deploy.csv", 1500)
    with monkeypatch.context() as old_release:
        old_release.setattr(StoredObject, "identity", StoredObject.legacy_identity)
        first = ingest_object(ref, world.ingest, short_invocation())
    (message,) = continue_queue(world).bodies
    # When this release runs the continuation
    (result,) = ingest_or_continue(sqs_event(message), world.ingest, Deadline.after(900))
    # Then the job carries on to the end of the same file
    assert (result.status, result.job_id) == ("queued", first.job_id)
    sent_rows = [row for b in world.queue.bodies for row in json.loads(b)["job"]["rows"]]
    assert len(sent_rows) == len(set(sent_rows)) == 1500 - 150


def test_a_redelivered_work_message_of_an_earlier_part_is_counted_once(world: World) -> None:
    # Given a file read in two parts and all its batches delivered
    ref = upload_rows(world, "incoming/redelivered.csv", 1500)
    first = ingest_object(ref, world.ingest, short_invocation())
    run_continuations(world)
    deliver_all(world)
    # When a batch of the first part is delivered again
    process_message("again", world.queue.bodies[0], 2, world.worker, Deadline.after(60))
    # Then the job's counts are unchanged
    state = world.jobs.get(first.job_id)
    assert state is not None
    assert state.created == 1500 - 150
    assert state.batches_done == state.batches_total == len(world.queue.bodies)


def test_a_checkpoint_stored_before_rows_of_one_person_were_carried_still_loads() -> None:
    # Given a checkpoint as ingest stored it before it carried rows of one person between parts
    old = (
        '{"part":2,"rows":1998,"rejected":200,"batches":18,"next_row":2000,'
        '"rejects_keys":["rejects/a.rejects-part-0001.csv"],"duplicates":3}'
    )
    # When it is loaded, and stored again
    checkpoint = Checkpoint.from_json(old)
    # Then it carries nothing (that part merges as before), and reads back the same
    assert (checkpoint.rows, checkpoint.duplicates, checkpoint.merge) == (1998, 3, MergeState())
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


# --- reading on at a byte offset ---------------------------------------------------------------


def _csv_file(encoding: str, newline: str, delimiter: str) -> bytes:
    """Rows with quoted line breaks in a cell, and every tenth without an email (a reject)."""
    lines = [delimiter.join(["First Name", "Last Name", "Email", "Notes"])]
    for i in range(ROWS):
        email = "" if i % 10 == 0 else f"p{i}@example.in"
        lines.append(delimiter.join([f"Rénu{i}", f"L{i}", email, f'"line one{newline}line two; ₹"']))
    return newline.join(lines).encode(encoding)


def _jsonl_file() -> bytes:
    lines = [
        json.dumps(
            {
                "first_name": f"Rénu{i}",
                "last_name": f"L{i}",
                **({"email": f"p{i}@example.in"} if i % 10 else {}),
            }
        )
        for i in range(ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


def _read(world: World, key: str, data: bytes, deadline: Deadline) -> tuple[list[Any], str]:
    """Ingest the file (in parts, with continuations, when the deadline is short): what was sent, in
    order (each row's number and record), and the rejected rows of every rejects file, one text."""
    world.objects.put_bytes(BUCKET, key, data, "application/octet-stream")
    ingest_object(S3ObjectRef(bucket=BUCKET, key=key), world.ingest, deadline)
    run_continuations(world)
    sent = []
    for body in world.queue.bodies:
        message = json.loads(body)
        sent += list(zip(message["job"]["rows"], message["userProperties"], strict=True))
    rejected = ""
    for reject_key in world.objects.keys(BUCKET, "rejects/"):
        text = world.objects.text(BUCKET, reject_key)
        rejected += text.partition("\n")[2] if reject_key.endswith(".csv") else text  # no header
    return sent, rejected


@pytest.mark.parametrize(
    ("name", "data", "by_offset"),
    [
        ("semicolons.csv", _csv_file("utf-8-sig", "\r\n", ";"), True),
        ("utf16.csv", _csv_file("utf-16", "\r\n", ","), True),
        ("people.jsonl", _jsonl_file(), True),
        ("packed.csv.gz", gzip.compress(_csv_file("utf-8", "\n", ",")), False),
    ],
)
def test_a_file_read_in_parts_sends_and_rejects_exactly_what_a_one_part_read_does(
    name: str, data: bytes, by_offset: bool
) -> None:
    # Given the same file ingested in one invocation, and in invocations that have time for 999 rows
    whole, parts = World(), World()
    for world in (whole, parts):
        world.ingest = replace(world.ingest, continue_queue=InMemoryWorkQueue())
    one_part = _read(whole, f"incoming/{name}", data, Deadline.after(900))
    # When it is read in parts
    in_parts = _read(parts, f"incoming/{name}", data, short_invocation())
    # Then every row is sent or rejected once, with the file's own numbers, as in the one-part read
    assert len(continue_queue(parts).bodies) >= 2
    assert in_parts == one_part
    assert len(one_part[0]) == ROWS - ROWS // 10
    assert one_part[1].count("needs at least one of phoneNumber, email or partnerCustomerId") == ROWS // 10
    # And a plain CSV or JSON-lines continuation read on with a ranged GET from its checkpoint's offset,
    # where a gzip is read again from its start, the rows done skipped
    # (pass 1, which finds rows of one person, reads from the start in every part it takes)
    starts = [start for key, start in parts.objects.opened if key == f"incoming/{name}"]
    ranged = [start for start in starts if start]
    assert starts[0] == 0
    if by_offset:
        assert len(ranged) >= 2
        assert ranged == sorted(set(ranged)) and ranged[-1] < len(data)
    else:
        assert ranged == []


@pytest.mark.parametrize(
    ("name", "data", "by_offset"),
    [
        ("semicolons.csv", _csv_file("utf-8-sig", "\r\n", ";"), True),
        ("people.jsonl", _jsonl_file(), True),
        ("packed.csv.gz", gzip.compress(_csv_file("utf-8", "\n", ",")), False),
    ],
)
def test_a_file_whose_second_pass_runs_out_of_time_reads_on_where_the_first_pass_left_a_resume_point(
    name: str, data: bytes, by_offset: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same file ingested in one invocation, and in one whose first pass reads it all but
    # whose time is up at the first check of the second pass (sent from the first pass's spill)
    whole, parts = World(), World()
    for world in (whole, parts):
        world.ingest = replace(world.ingest, continue_queue=InMemoryWorkQueue())
    one_part = _read(whole, f"incoming/{name}", data, Deadline.after(900))
    time_left = [900_000.0]
    spilled_rows = Spill.__iter__

    def rows_with_time_up(spill: Spill) -> Iterator[Any]:
        time_left[0] = 0.0
        return spilled_rows(spill)

    monkeypatch.setattr(Spill, "__iter__", rows_with_time_up)
    # When it is read so
    in_parts = _read(parts, f"incoming/{name}", data, Deadline(lambda: time_left[0]))
    # Then the continuations send and reject what the one-part read does, each row once
    assert time_left == [0.0] and len(continue_queue(parts).bodies) >= 2
    assert in_parts == one_part
    # And the first continuation reads on at the byte the spill said (a plain file), where a gzip is
    # read again from its start, the rows done skipped
    starts = [start for key, start in parts.objects.opened if key == f"incoming/{name}"]
    assert starts[0] == 0 and (starts[1] > 0) is by_offset


def test_a_checkpoint_written_before_offsets_were_kept_is_carried_on_by_skipping_rows(world: World) -> None:
    # Given a file whose first part was handed over with a checkpoint of the old shape (no offset)
    ref = upload_rows(world, "incoming/old.csv", ROWS)
    first = ingest_object(ref, world.ingest, short_invocation())
    item = world.jobs.items[job_pk(first.job_id)]
    old = json.loads(item["ingest_checkpoint"])
    del old["resume"]
    item["ingest_checkpoint"] = json.dumps(old)
    assert Checkpoint.from_json(item["ingest_checkpoint"]).resume is None
    # When the continuations run
    run_continuations(world)
    # Then the next part reads the object from its start, and every valid row is sent once, in order
    assert [start for key, start in world.objects.opened if key == ref.key][2] == 0
    sent_rows = [row for b in world.queue.bodies for row in json.loads(b)["job"]["rows"]]
    assert sent_rows == [i + 2 for i in range(ROWS) if i % 10]
