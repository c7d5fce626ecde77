"""Ingest of one object, on the in-memory fakes: counts, work messages, rejects and reports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from bik_sync.clock import Deadline
from bik_sync.ingest import IngestDeps, JobBusy, ingest_event, ingest_object
from bik_sync.jobs import job_id_for
from bik_sync.ports import StoredObject
from bik_sync.s3_events import S3ObjectRef
from bik_sync.settings import IngestSettings
from tests.fakes import InMemoryJobStore, InMemoryObjectStore, InMemoryWorkQueue
from tests.unit.records.test_records_xlsx import _workbook

BUCKET = "data"
HEADER = "First Name,Last Name,Email"


@pytest.fixture
def deps() -> IngestDeps:
    return IngestDeps(
        settings=IngestSettings(
            work_queue_url="work", jobs_table_name="jobs", job_signing_secret_id="signing"
        ),
        objects=InMemoryObjectStore(),
        queue=InMemoryWorkQueue(),
        jobs=InMemoryJobStore(),
        signing_key=lambda: b"unit-test-signing-key-of-32-bytes!",
        sleep=lambda seconds: None,
    )


def upload(deps: IngestDeps, key: str, *lines: str) -> S3ObjectRef:
    deps.objects.put_bytes(BUCKET, key, "\n".join(lines).encode(), "text/csv")
    return S3ObjectRef(bucket=BUCKET, key=key)


def objects(deps: IngestDeps) -> InMemoryObjectStore:
    assert isinstance(deps.objects, InMemoryObjectStore)
    return deps.objects


def messages(deps: IngestDeps) -> list[dict[str, Any]]:
    assert isinstance(deps.queue, InMemoryWorkQueue)
    return [json.loads(body) for body in deps.queue.bodies]


def rows_of(count: int, start: int = 0) -> list[str]:
    return [f"F{i},L{i},p{i}@example.in" for i in range(start, start + count)]


def test_valid_rows_become_work_messages_and_invalid_rows_a_rejects_file_when_a_file_is_ingested(
    deps: IngestDeps,
) -> None:
    # Given a file with three good rows and one without any identity
    ref = upload(deps, "incoming/customers.csv", HEADER, *rows_of(2), "Nobody,Known,", *rows_of(1, 2))
    # When it is ingested
    result = ingest_object(ref, deps)
    # Then the good rows are one work message in the API's shape, with the job and their row numbers
    (message,) = messages(deps)
    assert (result.status, result.rows, result.rejected, result.batches) == ("queued", 4, 1, 1)
    assert [r["email"] for r in message["userProperties"]] == [
        "p0@example.in",
        "p1@example.in",
        "p2@example.in",
    ]
    assert (message["job"]["key"], message["job"]["batch"], message["job"]["rows"]) == (
        "incoming/customers.csv",
        1,
        [2, 3, 5],  # line numbers of the file, the header being line 1
    )
    # And the bad row is in a CSV rejects file of the job's own, under the input's key
    state = deps.jobs.get(result.job_id)
    assert state is not None and state.run.endswith("-" + result.job_id[:8])
    rejects_key = f"rejects/incoming/customers.csv/{state.run}.rejects.csv"
    rejects = list(csv.DictReader(io.StringIO(objects(deps).text(BUCKET, rejects_key))))
    assert [(r["First Name"], r["_row"]) for r in rejects] == [("Nobody", "4")]
    assert "phoneNumber" in rejects[0]["_error"] or "email" in rejects[0]["_error"]
    # And the job counts the rows, but has no report while its batch is out
    assert (state.rows, state.rejected_at_ingest, state.batches_total, state.complete) == (4, 1, 1, False)
    assert objects(deps).keys(BUCKET, "reports/") == []


def test_the_report_is_written_at_once_when_no_row_of_the_file_is_valid(deps: IngestDeps) -> None:
    # Given a file of rows that all fail validation
    ref = upload(deps, "incoming/bad.csv", HEADER, "A,B,", "C,D,")
    # When it is ingested
    ingest_object(ref, deps)
    # Then no message is sent and the report accounts for every row as rejected
    report = objects(deps).json(BUCKET, "reports/incoming/bad.csv.json")
    assert messages(deps) == []
    assert (report["rows"], report["rejected"], report["status"]) == (2, 2, "complete")
    assert report["rejects_files"] == [f"rejects/incoming/bad.csv/{report['run']}.rejects.csv"]
    assert objects(deps).json(BUCKET, f"reports/incoming/bad.csv/{report['run']}.json") == report


def test_an_upload_of_the_same_key_again_keeps_every_earlier_jobs_files(deps: IngestDeps) -> None:
    # Given yesterday's export and today's, uploaded under the same key, each with a bad row
    first = ingest_object(upload(deps, "incoming/daily.csv", HEADER, "A,B,", "C,D,"), deps)
    second = ingest_object(upload(deps, "incoming/daily.csv", HEADER, "E,F,", *rows_of(0)), deps)
    # Then they are two jobs, and each job's report and rejects are its own
    runs = [state.run for state in (deps.jobs.get(first.job_id), deps.jobs.get(second.job_id)) if state]
    assert len(set(runs)) == 2 and runs[0] < runs[1]
    assert objects(deps).keys(BUCKET, "rejects/") == [
        f"rejects/incoming/daily.csv/{run}.rejects.csv" for run in runs
    ]
    first_report = objects(deps).json(BUCKET, f"reports/incoming/daily.csv/{runs[0]}.json")
    assert (first_report["rows"], first_report["rejected"]) == (2, 2)
    # And the documented key holds the latest job's report
    latest = objects(deps).json(BUCKET, "reports/incoming/daily.csv.json")
    assert (latest["run"], latest["rows"]) == (runs[1], 1)


def test_records_are_packed_by_the_batch_size_when_a_file_has_more_rows_than_a_batch(
    deps: IngestDeps,
) -> None:
    # Given batches of at most 100 records, and 250 valid rows
    ref = upload(deps, "incoming/many.csv", HEADER, *rows_of(250))
    # When the file is ingested
    result = ingest_object(ref, deps)
    # Then three messages carry 100, 100 and 50 records, numbered 1 to 3
    sent = messages(deps)
    assert result.batches == 3
    assert [len(m["userProperties"]) for m in sent] == [100, 100, 50]
    assert [m["job"]["batch"] for m in sent] == [1, 2, 3]


def test_a_second_event_for_the_same_object_version_is_a_duplicate_when_the_job_is_done(
    deps: IngestDeps,
) -> None:
    # Given a file that was ingested once
    ref = upload(deps, "incoming/twice.csv", HEADER, *rows_of(1))
    first = ingest_object(ref, deps)
    # When the same event comes again
    second = ingest_object(ref, deps)
    # Then it is a duplicate: nothing is read or sent again
    assert (first.status, second.status, second.job_id) == ("queued", "duplicate", first.job_id)
    assert len(messages(deps)) == 1


def test_identical_bytes_uploaded_again_to_an_unversioned_bucket_are_a_job_of_their_own(
    deps: IngestDeps,
) -> None:
    # Given a daily export that did not change (its one row rejected, so the report comes at once),
    # uploaded again a second later with no versioning (the same ETag), and an event of the first
    # upload delivered twice before the second upload
    ref = upload(deps, "incoming/daily.csv", HEADER, "A,B,")
    first = ingest_object(ref, deps)
    redelivered = ingest_object(ref, deps)
    upload(deps, "incoming/daily.csv", HEADER, "A,B,")
    second = ingest_object(ref, deps)
    # Then the redelivered event is the first upload's job, and the second upload a job of its own
    assert (first.status, redelivered.status, second.status) == ("queued", "duplicate", "queued")
    assert redelivered.job_id == first.job_id != second.job_id
    runs = [state.run for state in (deps.jobs.get(first.job_id), deps.jobs.get(second.job_id)) if state]
    # With a report each, and the latest report the second upload's
    assert objects(deps).keys(BUCKET, "reports/incoming/daily.csv/") == [
        f"reports/incoming/daily.csv/{run}.json" for run in runs
    ]
    assert objects(deps).json(BUCKET, "reports/incoming/daily.csv.json")["run"] == runs[1]


def test_a_bucket_with_versioning_suspended_names_each_upload_by_its_time_not_its_null_version(
    deps: IngestDeps,
) -> None:
    # Given two uploads of the same bytes to a bucket whose versioning is suspended: S3 serves
    # the version "null" for both, and the events name it
    ref = replace(upload(deps, "incoming/suspended.csv", HEADER, *rows_of(1)), version_id="null")
    first = ingest_object(ref, deps)
    upload(deps, "incoming/suspended.csv", HEADER, *rows_of(1))
    second = ingest_object(ref, deps)
    # Then they are two jobs, not one
    assert (first.status, second.status) == ("queued", "queued")
    assert first.job_id != second.job_id


def test_the_latest_report_is_the_later_of_two_uploads_within_one_second(
    deps: IngestDeps, lambda_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given two uploads of one key within the same second (S3's LastModified is the same), each
    # announced by moto's event shape (no sequencer; eventTime in milliseconds), and ids such that
    # the earlier upload's run sorts after the later one's
    key, second = "incoming/twice-a-second.csv", 1_795_931_241.0
    refs = []
    for cells, event_time in (("A0,B,", "2026-11-29T05:47:21.100Z"), ("C0,D,", "2026-11-29T05:47:21.900Z")):
        upload(deps, key, HEADER, cells)
        objects(deps).uploaded[(BUCKET, key)] = second
        event = lambda_event("s3-put-moto.json")
        record = event["Records"][0]
        record["eventTime"], record["s3"]["object"]["key"] = event_time, key
        record["s3"]["bucket"]["name"] = BUCKET
        record["s3"]["object"]["eTag"] = objects(deps).open(BUCKET, key).etag
        [result] = ingest_event(event, deps)
        refs.append(deps.jobs.get(result.job_id))
    earlier, later = refs
    assert earlier is not None and later is not None
    assert earlier.run > later.run  # the ids alone would order them the wrong way round
    # Then the later upload's report is the latest, though the earlier one's report came last
    assert objects(deps).json(BUCKET, f"reports/{key}.json")["job_id"] == later.job_id
    assert later.uploaded_at == "2026-11-29T05:47:21.900Z"


def test_an_upload_replaced_before_its_event_was_read_gets_a_report_that_says_so(
    deps: IngestDeps, lambda_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given two uploads of one key to a bucket without versions, both landed before either event is
    # read (moto's event shape: no version, no sequencer); their rows are rejects, so that a job is
    # complete, and reported, at ingest
    key = "incoming/uploaded-twice.csv"
    events = []
    for cells, event_time in (
        ("A0,B,", "2026-11-29T05:47:21.100Z"),
        ("C0,D,", "2026-11-29T05:47:23.900Z"),
    ):
        upload(deps, key, HEADER, cells)
        event = lambda_event("s3-put-moto.json")
        record = event["Records"][0]
        record["eventTime"], record["s3"]["object"]["key"] = event_time, key
        record["s3"]["bucket"]["name"] = BUCKET
        record["s3"]["object"]["eTag"] = objects(deps).open(BUCKET, key).etag
        events.append(event)
    # When the first upload's event is read, then the second's
    [first] = ingest_event(events[0], deps)
    [second] = ingest_event(events[1], deps)
    # Then the first upload has a report of its own saying it was replaced unread, with nothing counted
    reports = [k for k in objects(deps).keys(BUCKET, f"reports/{key}/")]
    assert len(reports) == 2
    replaced = [
        objects(deps).json(BUCKET, k)
        for k in reports
        if objects(deps).json(BUCKET, k)["status"] == "replaced"
    ]
    assert len(replaced) == 1 and replaced[0]["rows"] == 0 == replaced[0]["created"]
    assert (
        "replaced by a later upload" in replaced[0]["error"]
        and replaced[0]["uploaded_at"] == "2026-11-29T05:47:21.100Z"
    )
    assert replaced[0]["report"] in reports and replaced[0]["run"].startswith("20261129T054721Z-")
    # And the bytes read were the second upload's, one job, whose report is the key's latest
    assert second.status == "duplicate" and first.job_id == second.job_id
    latest = objects(deps).json(BUCKET, f"reports/{key}.json")
    assert latest["job_id"] == first.job_id and latest["status"] != "replaced"


def test_an_event_delivered_again_after_its_upload_was_read_and_replaced_writes_no_replaced_report(
    deps: IngestDeps, lambda_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given an upload read through its event (its one row a reject, so that it is reported at once)
    key = "incoming/read-then-replaced.csv"
    upload(deps, key, HEADER, "A0,B,")
    objects(deps).uploaded[(BUCKET, key)] = 1_795_931_241.0  # its LastModified: the event's second
    event = lambda_event("s3-put-moto.json")
    record = event["Records"][0]
    record["eventTime"], record["s3"]["object"]["key"] = "2026-11-29T05:47:21.700Z", key
    record["s3"]["bucket"]["name"] = BUCKET
    record["s3"]["object"]["eTag"] = objects(deps).open(BUCKET, key).etag
    [first] = ingest_event(event, deps)
    # And a later upload of the key, and a multipart upload's event naming an ETag that is gone
    upload(deps, key, HEADER, "C0,D,")
    multipart = json.loads(json.dumps(event))
    multipart["Records"][0]["s3"]["object"]["eTag"] = "3858f62230ac3c915f300c664312c11f-88"
    # When the first event is delivered again, and the multipart one comes
    [again] = ingest_event(event, deps)
    ingest_event(multipart, deps)
    # Then no report says an upload was replaced unread: the first one was read and is reported,
    # and the event read the later upload's bytes, a job of its own
    reports = [objects(deps).json(BUCKET, k) for k in objects(deps).keys(BUCKET, f"reports/{key}/")]
    assert sorted(r["job_id"] for r in reports) == sorted([first.job_id, again.job_id])
    assert {r["status"] for r in reports} == {"complete"}


def test_a_json_object_with_two_lists_of_records_is_refused_before_any_record_is_sent(
    deps: IngestDeps,
) -> None:
    # Given a CRM's JSON export holding its contacts and, after them, its own users
    people = [{"first_name": f"F{i}", "last_name": "L", "email": f"p{i}@example.in"} for i in range(150)]
    body = {"contacts": people, "users": [{"id": 7, "email": "rep@brand.example"}], "meta": {}}
    deps.objects.put_bytes(BUCKET, "incoming/crm.json", json.dumps(body).encode(), "application/json")
    # When it is ingested
    result = ingest_object(S3ObjectRef(bucket=BUCKET, key="incoming/crm.json"), deps)
    # Then nothing was sent, and the report says why, naming both lists
    assert (result.status, messages(deps)) == ("unreadable", [])
    report = objects(deps).json(BUCKET, "reports/incoming/crm.json.json")
    assert (report["status"], report["rows"]) == ("unreadable", 0)
    assert 'two lists of records, under "contacts" and "users"' in report["error"]


def test_an_excel_reports_title_rows_are_named_in_the_report_and_rejects_keep_excels_row_numbers(
    deps: IngestDeps,
) -> None:
    # Given an Excel report: a title on row 1, the header on row 3, a row without any identity
    sheet = [["Customer export, 1 Dec 2026"], [], ["First Name", "Last Name", "Email"], ["Asha", "Rao", ""]]
    deps.objects.put_bytes(BUCKET, "incoming/report.xlsx", _workbook({"Report": sheet}), "application/zip")
    # When it is ingested
    ingest_object(S3ObjectRef(bucket=BUCKET, key="incoming/report.xlsx"), deps)
    # Then the report says which rows were not read, and the reject carries the sheet's row number
    report = objects(deps).json(BUCKET, "reports/incoming/report.xlsx.json")
    assert (report["status"], report["rows"], report["rejected"]) == ("complete", 1, 1)
    assert report["notes"] == [
        "the header is row 3: 1 row above it (a title or notes) not read as customers; "
        "row numbers are the sheet's"
    ]
    [rejects_key] = report["rejects_files"]
    assert next(csv.DictReader(io.StringIO(objects(deps).text(BUCKET, rejects_key))))["_row"] == "4"


def test_ingest_raises_job_busy_when_another_ingest_holds_the_lease(deps: IngestDeps) -> None:
    # Given another ingest of the same object version under way
    ref = upload(deps, "incoming/busy.csv", HEADER, *rows_of(1))
    job_id = job_id_for(BUCKET, ref.key, objects(deps).open(BUCKET, ref.key).identity)
    deps.jobs.start(job_id, bucket=BUCKET, key=ref.key, source="s3", lease_s=120)
    # When the event arrives, then it is retried later, and nothing was sent
    with pytest.raises(JobBusy):
        ingest_object(ref, deps)
    assert messages(deps) == []


def test_objects_outside_incoming_and_vanished_objects_are_skipped_when_announced(deps: IngestDeps) -> None:
    # Given an output key and a key whose object is gone
    upload(deps, "reports/x.json", "{}")
    # When each is announced, then neither becomes a job
    assert ingest_object(S3ObjectRef(BUCKET, "reports/x.json"), deps).status == "skipped"
    assert ingest_object(S3ObjectRef(BUCKET, "incoming/gone.csv"), deps).status == "skipped"
    assert ingest_event({"detail-type": "Object Created"}, deps) == []
    assert deps.jobs.get(job_id_for(BUCKET, "incoming/gone.csv", "")) is None


def test_a_missing_mapping_file_makes_an_unreadable_report_when_the_settings_name_one(
    deps: IngestDeps,
) -> None:
    # Given settings that name a mapping file that is not there
    mapped = replace(deps, settings=replace(deps.settings, mapping_uri=f"s3://{BUCKET}/mappings/none.json"))
    ref = upload(mapped, "incoming/orphan.csv", HEADER, *rows_of(1))
    # When the file is ingested
    result = ingest_object(ref, mapped)
    # Then the report says the file could not be read, and why
    report = objects(deps).json(BUCKET, "reports/incoming/orphan.csv.json")
    assert result.status == report["status"] == "unreadable"
    assert "mappings/none.json: it does not exist" in report["error"]
    assert report["rows"] == 0


def test_a_mapping_file_in_the_bucket_maps_the_columns_when_the_settings_name_it(deps: IngestDeps) -> None:
    # Given a mapping file for a CRM export's own column names
    deps.objects.put_bytes(
        BUCKET,
        "mappings/crm.json",
        b'{"Given": "firstName", "Family": "lastName", "Cell": "phoneNumber"}',
        "application/json",
    )
    mapped = replace(deps, settings=replace(deps.settings, mapping_uri=f"s3://{BUCKET}/mappings/crm.json"))
    ref = upload(mapped, "incoming/crm.csv", "Given,Family,Cell,Tier", "Tara,Bose,9830012345,gold")
    # When the export is ingested
    ingest_object(ref, mapped)
    # Then the record is mapped and its phone normalised with the default region
    ((record,),) = [m["userProperties"] for m in messages(deps)]
    assert record == {"firstName": "Tara", "lastName": "Bose", "phoneNumber": "+919830012345"}


def test_ingest_stops_at_a_row_boundary_when_time_runs_out_and_no_continue_queue_is_set(
    deps: IngestDeps,
) -> None:
    # Given a 30,000-row file (about 700 KB), no continuation queue, and time that runs out after its
    # first pieces (the first pass, which finds rows of one person, reads the clock too)
    ref = upload(deps, "incoming/huge.csv", HEADER, *rows_of(30_000))
    clock = iter([900_000] + [120_000] * 3 + [30_000] * 2000)
    # When it is ingested
    result = ingest_object(ref, deps, Deadline(lambda: next(clock)))
    # Then it stops at a row boundary, sends what it read, and the job says where and why it stopped
    state = deps.jobs.get(result.job_id)
    assert state is not None
    assert 0 < result.rows == state.rows < 30_000
    assert sum(len(m["userProperties"]) for m in messages(deps)) == result.rows
    assert state.details["status"] == "incomplete"
    assert f"stopped before row {result.rows + 2}:" in state.details["error"]
    assert "INGEST_CONTINUE_QUEUE_URL is not set" in state.details["error"]


def test_refused_entries_are_sent_again_when_the_queue_throttles(deps: IngestDeps) -> None:
    # Given a queue that refuses the first two entries it is given
    throttled = replace(deps, queue=InMemoryWorkQueue(refuse=2))
    ref = upload(throttled, "incoming/throttled.csv", HEADER, *rows_of(300))
    # When the file is ingested
    ingest_object(ref, throttled)
    # Then every batch arrives once, in a second send
    assert isinstance(throttled.queue, InMemoryWorkQueue)
    assert sorted(json.loads(b)["job"]["batch"] for b in throttled.queue.bodies) == [1, 2, 3]
    assert throttled.queue.sends == 2


def test_the_lease_is_released_for_a_retry_when_the_queue_keeps_refusing(deps: IngestDeps) -> None:
    # Given a queue that refuses everything
    refusing = replace(deps, queue=InMemoryWorkQueue(refuse=1_000))
    ref = upload(refusing, "incoming/refused.csv", HEADER, *rows_of(1))
    # When the file is ingested, then ingest fails (Lambda retries the event)
    with pytest.raises(RuntimeError, match="work queue refused 1 batch message"):
        ingest_object(ref, refusing)
    # And the retry may start the job again at once
    retried = ingest_object(ref, replace(deps, queue=InMemoryWorkQueue()))
    assert retried.status == "queued"


def test_a_folder_marker_is_skipped_and_a_folder_named_object_with_data_gets_a_report(
    deps: IngestDeps,
) -> None:
    # Given the empty object the S3 console makes for a folder, and one with data under such a name
    deps.objects.put_bytes(BUCKET, "incoming/hubspot/", b"", "")
    deps.objects.put_bytes(BUCKET, "incoming/oops/", f"{HEADER}\nA,B,a@b.in\n".encode(), "text/csv")
    # When both are ingested
    marker = ingest_object(S3ObjectRef(bucket=BUCKET, key="incoming/hubspot/"), deps)
    oops = ingest_object(S3ObjectRef(bucket=BUCKET, key="incoming/oops/"), deps)
    # Then the marker is no job, and the other is an unreadable job whose report says why
    assert (marker.status, oops.status) == ("skipped", "unreadable")
    report = objects(deps).json(BUCKET, "reports/incoming/oops.json")
    assert report["status"] == "unreadable" and "ends in '/'" in report["error"]
    assert objects(deps).keys(BUCKET, "reports/incoming/hubspot") == []


def test_a_header_of_fifty_thousand_columns_keeps_the_jobs_item_small(deps: IngestDeps) -> None:
    # Given a header of 50,000 columns, almost all unknown
    header = HEADER + "," + ",".join(f"Extra {n}" for n in range(50_000))
    ref = upload(deps, "incoming/wide.csv", header, "A,B,a@b.in" + "," * 50_000)
    # When it is ingested
    result = ingest_object(ref, deps)
    # Then the job's item lists the first ignored columns and says how many there are
    state = deps.jobs.get(result.job_id)
    assert state is not None
    assert len(state.details["ignored_columns"]) == 100
    assert state.details["ignored_column_count"] == 50_000
    assert state.details["ignored_columns"][:2] == ["Extra 0", "Extra 1"]


def test_a_gzip_of_blank_lines_still_stops_on_time_though_it_has_no_rows(deps: IngestDeps) -> None:
    # Given a gzip of 20 million blank lines after the header (20 MB of text, 20 KB compressed)
    import gzip

    data = gzip.compress(f"{HEADER}\n".encode() + b"\n" * 20_000_000)
    deps.objects.put_bytes(BUCKET, "incoming/blank.csv.gz", data, "application/gzip")
    calls = 0

    def remaining_ms() -> int:
        nonlocal calls
        calls += 1
        return 120_000 if calls < 5 else 1_000

    # When it is ingested with little time
    result = ingest_object(
        S3ObjectRef(bucket=BUCKET, key="incoming/blank.csv.gz"), deps, Deadline(remaining_ms)
    )
    # Then the clock was looked at while blank lines were read, and the job stopped with its reason
    state = deps.jobs.get(result.job_id)
    assert state is not None and state.details["status"] == "incomplete"
    assert result.rows == 0 and calls < 50


def test_an_event_of_no_known_shape_is_logged_and_starts_no_job(deps: IngestDeps) -> None:
    from bik_sync.continuation import ingest_or_continue

    for event in ({"detail-type": "Object Created"}, {"Records": "nope"}, [{"a": 1}], "text"):
        assert ingest_or_continue(event, deps) == []  # type: ignore[arg-type]
    assert messages(deps) == []


class _VersionedObjectStore(InMemoryObjectStore):
    """A versioned bucket: a GET without a version serves the latest one, and names it."""

    def open(self, bucket: str, key: str, *, version_id: str = "", start: int = 0) -> StoredObject:
        served = super().open(bucket, key, version_id=version_id, start=start)
        return replace(served, version_id=version_id or f"v{int(served.last_modified)}")


def test_a_versioned_bucket_whose_events_name_no_version_gets_no_replaced_report(
    deps: IngestDeps, lambda_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given a versioned bucket (the local stack's) whose events name no version (moto's), and two
    # uploads of one key before the first one's event is read: the first one's bytes are still kept
    deps = replace(deps, objects=_VersionedObjectStore())
    key = "incoming/versioned-twice.csv"
    event = lambda_event("s3-put-moto.json")
    record = event["Records"][0]
    record["s3"]["object"]["key"], record["s3"]["bucket"]["name"] = key, BUCKET
    upload(deps, key, HEADER, "A0,B,")
    record["s3"]["object"]["eTag"] = objects(deps).open(BUCKET, key).etag
    upload(deps, key, HEADER, "C0,D,")
    # When the first upload's event is read
    ingest_event(event, deps)
    # Then no report says the upload is gone (the bucket keeps it): only the job read has a report
    reports = [objects(deps).json(BUCKET, k) for k in objects(deps).keys(BUCKET, f"reports/{key}/")]
    assert [r["status"] for r in reports] == ["complete"]


def test_an_event_delivered_again_for_an_upload_read_by_an_older_release_gets_no_replaced_report(
    deps: IngestDeps, lambda_event: Callable[[str], dict[str, Any]]
) -> None:
    # Given an upload read by a release that named jobs by the ETag alone, then a later upload
    key = "incoming/read-by-an-older-release.csv"
    upload(deps, key, HEADER, "A0,B,")
    etag = objects(deps).open(BUCKET, key).etag
    deps.jobs.start(job_id_for(BUCKET, key, etag), bucket=BUCKET, key=key, source="s3", lease_s=60)
    upload(deps, key, HEADER, "C0,D,")
    # When the first upload's event is delivered again (a DLQ replay after the upgrade)
    event = lambda_event("s3-put-moto.json")
    record = event["Records"][0]
    record["s3"]["object"]["key"], record["s3"]["bucket"]["name"] = key, BUCKET
    record["s3"]["object"]["eTag"] = etag
    ingest_event(event, deps)
    # Then no report says that upload was replaced unread: it was read
    reports = [objects(deps).json(BUCKET, k) for k in objects(deps).keys(BUCKET, f"reports/{key}/")]
    assert "replaced" not in {r["status"] for r in reports}


def test_an_event_delivered_again_after_its_job_reported_leaves_the_report_as_it_was(
    deps: IngestDeps,
) -> None:
    # Given a file of rejects alone, whose job ended and was reported at ingest
    ref = upload(deps, "incoming/again.csv", HEADER, "Ann,,not-an-email")
    first = ingest_object(ref, deps)
    [report_key] = objects(deps).keys(BUCKET, "reports/incoming/again.csv/")
    reported = objects(deps).json(BUCKET, report_key)
    # When its S3 event is delivered again an hour later
    assert isinstance(deps.jobs, InMemoryJobStore)
    deps.jobs.clock = lambda: 1_700_003_600.0
    second = ingest_object(ref, deps)
    # Then the event is ignored and neither report is written again: it still says when the job ended
    assert second.status == "duplicate" and second.job_id == first.job_id
    assert objects(deps).json(BUCKET, report_key) == reported
    assert objects(deps).json(BUCKET, "reports/incoming/again.csv.json") == reported
