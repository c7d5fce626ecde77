"""The worker's per-message path on the in-memory fakes: counts, reports, rejects, failed files,
redeliveries, malformed messages and resuming a partly delivered batch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bik_sync.clock import Deadline
from bik_sync.ingest import IngestDeps, ingest_object
from bik_sync.messages import JobMeta, build_work_message, encode_record
from bik_sync.s3_events import S3ObjectRef
from bik_sync.settings import IngestSettings, WorkerSettings
from bik_sync.upsert import DeliveryIncomplete, WorkerDeps, process_message
from tests.fakes import FakeBik, InMemoryJobStore, InMemoryObjectStore, InMemoryWorkQueue

BUCKET = "data"


SIGNING_KEY = b"unit-test-signing-key-of-32-bytes!"


class World:
    """The fakes both functions share, and the two functions' deps over them."""

    def __init__(self, *, batch_size: int = 100, max_batch_bytes: int = 200_000) -> None:
        self.objects = InMemoryObjectStore()
        self.queue = InMemoryWorkQueue()
        self.jobs = InMemoryJobStore()
        self.bik = FakeBik()
        tuning: dict[str, Any] = {"bik_batch_size": batch_size, "bik_max_batch_bytes": max_batch_bytes}
        self.worker = WorkerDeps(
            settings=WorkerSettings(
                jobs_table_name="jobs",
                bik_secret_id="secret",
                job_signing_secret_id="signing",
                data_bucket=BUCKET,
                max_receive_count=3,
                **tuning,
            ),
            objects=self.objects,
            jobs=self.jobs,
            bik=self.bik,
            signing_key=lambda: SIGNING_KEY,
        )
        self.ingest = IngestDeps(
            settings=IngestSettings(
                work_queue_url="work", jobs_table_name="jobs", job_signing_secret_id="signing", **tuning
            ),
            objects=self.objects,
            queue=self.queue,
            jobs=self.jobs,
            signing_key=lambda: SIGNING_KEY,
            sleep=lambda seconds: None,
        )

    def deliver(self, message_id: str, body: str, receive_count: int = 1) -> None:
        process_message(message_id, body, receive_count, self.worker, Deadline.after(60))

    def report(self, key: str) -> dict[str, Any]:
        document: dict[str, Any] = self.objects.json(BUCKET, key)
        return document


@pytest.fixture
def world() -> World:
    return World()


def person(i: int, **fields: Any) -> dict[str, Any]:
    return {"firstName": f"F{i}", "lastName": f"L{i}", "email": f"p{i}@example.in", **fields}


def body(*records: dict[str, Any]) -> str:
    return json.dumps({"userProperties": list(records)})


def test_records_from_another_system_are_upserted_and_reported_when_the_message_has_no_job(
    world: World,
) -> None:
    # Given the API body alone, as any system may send it
    # When the worker takes the message
    world.deliver("m-1", body(person(1), person(2)))
    # Then both records are in BIK and the message's own job reports them as created
    report = world.report("reports/sqs/m-1.json")
    assert [r["email"] for r in world.bik.sent] == ["p1@example.in", "p2@example.in"]
    assert (report["source"], report["rows"], report["created"], report["rejected"]) == ("sqs", 2, 2, 0)


def test_a_known_person_is_counted_as_updated_when_bik_holds_them_already(world: World) -> None:
    # Given a person BIK already holds
    world.deliver("m-1", body(person(1)))
    # When the same person comes in another message
    world.deliver("m-2", body(person(1, city="Pune")))
    # Then it counts as an update
    assert (world.report("reports/sqs/m-2.json")["updated"], world.bik.users["p1@example.in"]["city"]) == (
        1,
        "Pune",
    )


def test_the_message_is_rejected_to_s3_and_nothing_is_sent_when_it_is_not_json(world: World) -> None:
    # When a message that is not JSON arrives
    world.deliver("m-bad", "{not json")
    # Then it is rejected with the reason and its body, and nothing is sent to BIK
    rejected = world.objects.json(BUCKET, "rejects/sqs/m-bad.malformed.json")
    assert rejected["body"] == "{not json"
    assert rejected["error"].startswith("message body is not JSON")
    assert world.bik.requests == []


def test_a_malformed_message_gets_a_report_of_its_own_like_every_message(world: World) -> None:
    # Given a message that is not records at all (nested past any JSON parser's depth)
    world.deliver("m-deep", "[" * 100_000 + "]" * 100_000)
    # Then it is in rejects/ with the reason, and reports/sqs/<MessageId>.json says so
    report = world.report("reports/sqs/m-deep.json")
    assert (report["status"], report["rows"], report["rejects_files"]) == (
        "unreadable",
        0,
        ["rejects/sqs/m-deep.malformed.json"],
    )
    assert report["error"] == "message body is nested too deep to be user properties"
    assert report["reasons"] == {report["error"]: 1}
    assert world.bik.requests == []


def test_an_event_that_is_not_an_sqs_batch_is_logged_and_answers_no_failures(world: World) -> None:
    from bik_sync.upsert import process_work_batch

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    for event in ({}, {"Records": [{"eventSource": "aws:s3"}]}, {"Records": "nope"}, [{"a": 1}]):
        assert process_work_batch(event, Context(), world.worker) == {"batchItemFailures": []}  # type: ignore[arg-type]
    assert world.bik.requests == []


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _sqs_record(message_id: str, message: str, receive_count: int) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": str(receive_count)}
    return {"messageId": message_id, "body": message, "attributes": attributes, "eventSource": "aws:sqs"}


def test_only_the_messages_that_must_come_again_are_batch_item_failures(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bik_sync.upsert import process_work_batch

    # Given BIK down for p3 and p4, and a job table that breaks for one message
    world.bik.unavailable = lambda record: record["email"] in {"p3@example.in", "p4@example.in"}
    world.bik.outages = 10
    open_job = world.jobs.open_message_job

    def breaks_for_m_crash(job_id: str, **kwargs: Any) -> None:
        if job_id == "sqs-m-crash":
            raise RuntimeError("the table broke")
        open_job(job_id, **kwargs)

    monkeypatch.setattr(world.jobs, "open_message_job", breaks_for_m_crash)
    records = [
        _sqs_record("m-done", body(person(1)), 1),
        _sqs_record("m-retry", body(person(3)), 1),  # not delivered, receives are left: again
        _sqs_record("m-last", body(person(4)), 3),  # not delivered on its last receive: to failed/
        _sqs_record("m-crash", body(person(5)), 1),
        {"messageId": "m-unreadable", "body": body(person(6)), "eventSource": "aws:sqs"},  # no attributes
    ]
    # When the batch is processed
    response = process_work_batch({"Records": records}, _Context(), world.worker)  # type: ignore[arg-type]
    # Then SQS is asked again for exactly the retried, the crashed and the unreadable messages
    failures = sorted(item["itemIdentifier"] for item in response["batchItemFailures"])
    assert list(response) == ["batchItemFailures"]
    assert failures == ["m-crash", "m-retry", "m-unreadable"]
    # And the acknowledged ones are settled: one delivered, one in failed/
    assert world.report("reports/sqs/m-done.json")["created"] == 1
    assert world.report("reports/sqs/m-last.json")["failed"] == 1
    # And a batch in which every message succeeds has no failures
    again = [_sqs_record("m-fine", body(person(7)), 1)]
    assert process_work_batch({"Records": again}, _Context(), world.worker) == {"batchItemFailures": []}  # type: ignore[arg-type]


def test_a_message_with_job_metadata_ingest_did_not_sign_is_a_job_of_its_own(world: World) -> None:
    # Given a live job whose batch 1 is still out, and another system's message claiming that batch
    world.objects.put_bytes(
        BUCKET, "incoming/live.csv", b"First Name,Last Name,Email\nA,B,a@example.in\n", ""
    )
    ingest_object(S3ObjectRef(bucket=BUCKET, key="incoming/live.csv"), world.ingest)
    (real,) = world.queue.bodies
    job = json.loads(real)["job"]
    forged = {"userProperties": [person(7)], "job": {**job, "sig": "0" * 64}}
    # When the worker takes the forged message
    world.deliver("m-forged", json.dumps(forged))
    # Then its record is a job of its own, and the live job's batch is not counted by it
    assert world.report("reports/sqs/m-forged.json")["created"] == 1
    state = world.jobs.get(job["id"])
    assert state is not None and (state.batches_done, state.created) == (0, 0)
    # And when the real message comes, the live job is counted from it alone
    world.deliver("m-real", real)
    done = world.jobs.get(job["id"])
    assert done is not None and (done.batches_done, done.created, done.complete) == (1, 1, True)


def test_the_message_is_rejected_when_its_signed_job_metadata_names_no_known_job(world: World) -> None:
    # Given a message ingest signed for a job that is not (or no longer) in the jobs table
    meta = JobMeta(job_id="nope", bucket=BUCKET, key="k", batch=1, rows=(2,))
    body = build_work_message([encode_record(person(1))], meta, SIGNING_KEY)
    # When the worker takes it
    world.deliver("m-claim", body)
    # Then it is malformed, with the reason: nothing is sent or counted
    rejected = world.objects.json(BUCKET, "rejects/sqs/m-claim.malformed.json")
    assert rejected["error"] == '"job" names no batch of a known job'
    assert world.bik.requests == []


def test_records_failing_our_checks_go_to_a_rejects_file_when_the_rest_is_delivered(world: World) -> None:
    # Given a message with one record without any identity
    world.deliver("m-1", body(person(1), {"firstName": "No", "lastName": "Identity"}))
    # Then the good record is created and the other is in the batch's rejects file with its row
    report = world.report("reports/sqs/m-1.json")
    (reject,) = world.objects.jsonl(BUCKET, "rejects/sqs/m-1.rejects-00001.jsonl")
    assert (report["created"], report["rejected_invalid"], report["rejected_by_bik"]) == (1, 1, 0)
    assert (reject["firstName"], reject["_row"]) == ("No", 2)
    assert report["rejects_files"] == ["rejects/sqs/m-1.rejects-00001.jsonl"]


def test_a_record_bik_refuses_is_rejected_with_bik_reason_when_the_batch_is_accepted(world: World) -> None:
    # Given BIK refuses one person in an otherwise good batch
    world.bik.refuse["p2@example.in"] = '"emil" is not allowed'
    # When the message is delivered
    world.deliver("m-1", body(person(1), person(2)))
    # Then that record is a BIK reject with BIK's message, the other is created
    report = world.report("reports/sqs/m-1.json")
    (reject,) = world.objects.jsonl(BUCKET, "rejects/sqs/m-1.rejects-00001.jsonl")
    assert (report["created"], report["rejected_by_bik"], report["rejected"]) == (1, 1, 1)
    assert (reject["email"], reject["_error"]) == ("p2@example.in", '"emil" is not allowed')


def test_a_redelivered_message_sends_and_counts_nothing_again_when_its_batch_was_counted(
    world: World,
) -> None:
    # Given a message whose batch was delivered and counted
    world.deliver("m-1", body(person(1)))
    requests = len(world.bik.requests)
    first_report = world.report("reports/sqs/m-1.json")
    # When SQS delivers it again, an hour later
    world.jobs.clock = lambda: 1_700_003_600.0
    world.deliver("m-1", body(person(1)), receive_count=2)
    # Then nothing more reaches BIK and the report stays as it was (not even its finished_at moves)
    report = world.report("reports/sqs/m-1.json")
    assert len(world.bik.requests) == requests
    assert (report["created"], report["updated"], report["batches"]) == (1, 0, 1)
    assert report == first_report


def test_the_next_receive_sends_only_the_rest_when_a_delivery_was_partial() -> None:
    # Given two records a request, and BIK down for the request that holds p3
    world = World(batch_size=2)
    world.bik.unavailable = lambda record: record["email"] == "p3@example.in"
    world.bik.outages = 1
    records = [person(i) for i in range(1, 5)]
    # When the message is received, then it fails and will be delivered again
    with pytest.raises(DeliveryIncomplete, match="2 of 4 records not delivered"):
        world.deliver("m-1", body(*records))
    # And when it is received again, only the unsettled records are sent
    first = len(world.bik.requests)
    world.deliver("m-1", body(*records), receive_count=2)
    again = [r["email"] for request in world.bik.requests[first:] for r in request]
    report = world.report("reports/sqs/m-1.json")
    assert again == ["p3@example.in", "p4@example.in"]
    assert (report["created"], report["updated"], report["failed"]) == (4, 0, 0)


def test_undelivered_records_go_to_failed_and_the_message_is_done_when_it_is_the_last_receive() -> None:
    # Given BIK down for every request
    world = World()
    world.bik.unavailable = lambda record: True
    world.bik.outages = 10
    # When the message is received for the last allowed time (max_receive_count is 3)
    world.deliver("m-1", body(person(1), person(2)), receive_count=3)
    # Then no exception asks SQS for another try, and the records are in failed/ with the reason
    report = world.report("reports/sqs/m-1.json")
    failed = world.objects.jsonl(BUCKET, "failed/sqs/m-1.failed-00001.jsonl")
    assert (report["failed"], report["failed_files"]) == (2, ["failed/sqs/m-1.failed-00001.jsonl"])
    assert [(f["email"], "503" in f["_error"]) for f in failed] == [
        ("p1@example.in", True),
        ("p2@example.in", True),
    ]
    # And the report says the job failed, and why, in one line a person reads
    assert report["status"] == "failed"
    assert list(report["reasons"].values()) == [2] and "503" in next(iter(report["reasons"]))


def test_a_job_whose_records_partly_failed_is_partial_and_sums_its_reasons() -> None:
    # Given a file whose first batch BIK takes and whose second cannot be delivered
    world = World(batch_size=2)
    lines = ["First Name,Last Name,Email", "A,B,p1@example.in", "C,D,p2@example.in", "E,F,p3@example.in"]
    lines += ["G,H,", "I,J,"]  # two rows without any identity: rejected at ingest
    world.objects.put_bytes(BUCKET, "incoming/mixed.csv", "\n".join(lines).encode(), "text/csv")
    ingest_object(S3ObjectRef(BUCKET, "incoming/mixed.csv"), world.ingest)
    world.bik.unavailable = lambda record: record.get("email") == "p3@example.in"
    world.bik.outages = 100
    # When each message has had its last receive
    for n, message in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", message, receive_count=3)
    # Then the report is partial, and its reasons count the rejects and the failure
    report = world.report("reports/incoming/mixed.csv.json")
    assert (report["status"], report["created"], report["failed"], report["rejected"]) == ("partial", 2, 1, 2)
    reasons = report["reasons"]
    assert reasons["needs at least one of phoneNumber, email or partnerCustomerId"] == 2
    assert sum(reasons.values()) == 3


def test_a_file_is_reported_once_all_of_it_is_accounted_for_when_its_batches_are_delivered() -> None:
    # Given a file of 250 rows, one of them invalid, ingested into batches of 100
    world = World()
    lines = [
        "First Name,Last Name,Email",
        *(f"F{i},L{i},p{i}@example.in" for i in range(249)),
        "No,Identity,",
    ]
    world.objects.put_bytes(BUCKET, "incoming/file.csv", "\n".join(lines).encode(), "text/csv")
    ingest_object(S3ObjectRef(BUCKET, "incoming/file.csv"), world.ingest)
    # When every work message is delivered (the last twice, as SQS may)
    for n, message in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", message)
    world.deliver("m-last", world.queue.bodies[-1], receive_count=2)
    # Then the report accounts for every row exactly once
    report = world.report("reports/incoming/file.csv.json")
    assert (
        report["rows"] == report["created"] + report["updated"] + report["rejected"] + report["failed"] == 250
    )
    assert (report["created"], report["rejected"], report["batches"]) == (249, 1, 3)
    assert len(world.bik.sent) == 249


def test_a_work_message_packed_at_the_byte_cap_becomes_exactly_one_bik_request() -> None:
    # Given a byte cap that records of this size fill exactly, or nearly, many times over
    world = World(batch_size=1000, max_batch_bytes=1024)
    lines = ["First Name,Last Name,Email", *(f"F{i:04d},L{i:04d},p{i:04d}@example.in" for i in range(300))]
    world.objects.put_bytes(BUCKET, "incoming/cap.csv", "\n".join(lines).encode(), "text/csv")
    ingest_object(S3ObjectRef(BUCKET, "incoming/cap.csv"), world.ingest)
    # When each work message is delivered
    for n, message in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", message)
    # Then each message was one request, each request within the cap, and every record went in
    sizes = [len(json.dumps({"userProperties": r}, separators=(",", ":"))) for r in world.bik.requests]
    assert len(world.queue.bodies) > 1
    assert len(world.bik.requests) == len(world.queue.bodies)
    assert max(sizes) <= 1024 < max(sizes) + 60  # packed up to the cap, not short of it
    assert len(world.bik.sent) == 300


def test_the_unit_suite_refuses_to_open_a_socket_when_a_test_tries() -> None:
    import socket

    import urllib3

    from tests.unit.conftest import NetworkUsed

    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NetworkUsed), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(NetworkUsed):
        urllib3.PoolManager(retries=False).request("GET", "http://127.0.0.1:9/")
