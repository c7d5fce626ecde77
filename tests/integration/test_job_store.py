"""JobStore against DynamoDB (moto's server, over HTTP): each batch counted once, crashes survived."""

from __future__ import annotations

import uuid

import pytest

from bik_local.stack import RunningStack
from bik_sync.jobs import BatchCounts, BatchStatus, JobStore, StartOutcome

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(stack: RunningStack, clock: Clock) -> JobStore:
    return JobStore(stack.info["jobs_table"], stack.client("dynamodb"), clock=clock)


def new_job() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def open_job(jobs: JobStore, job_id: str, lease_s: float = 60) -> StartOutcome:
    return jobs.start(job_id, bucket="b", key="incoming/f.csv", source="s3", lease_s=lease_s)


def test_a_job_runs_once_busy_while_leased_and_done_after_ingest(jobs: JobStore) -> None:
    job = new_job()
    assert open_job(jobs, job) is StartOutcome.STARTED
    assert open_job(jobs, job) is StartOutcome.BUSY
    jobs.finish_ingest(job, rows=3, rejected=0, batches=1)
    assert open_job(jobs, job) is StartOutcome.DONE


def test_a_batch_is_counted_once_however_often_it_is_delivered(jobs: JobStore) -> None:
    # Given a job of two batches
    job = new_job()
    open_job(jobs, job)
    jobs.finish_ingest(job, rows=200, rejected=0, batches=2)
    # When batch 1 is counted, then delivered again
    first = jobs.record_batch(job, 1, BatchCounts(created=100))
    again = jobs.record_batch(job, 1, BatchCounts(created=100))
    # Then the second time counts nothing, and the job completes only with batch 2
    assert first is not None and (first.created, first.batches_done, first.complete) == (100, 1, False)
    assert again is None and jobs.batch_status(job, 1).counted and not jobs.batch_status(job, 2).counted
    last = jobs.record_batch(job, 2, BatchCounts(created=60, updated=30, rejected_by_bik=10))
    assert last is not None and last.complete
    report = last.report(finished_at="t")
    assert (report["created"], report["updated"], report["rejected"]) == (160, 30, 10)
    assert report["rows"] == report["created"] + report["updated"] + report["rejected"] + report["failed"]


def test_an_ingest_that_died_is_run_again_and_keeps_the_batches_already_counted(
    jobs: JobStore, clock: Clock
) -> None:
    # Given an ingest that sent and had counted batch 1, then died holding a 60 s lease
    job = new_job()
    open_job(jobs, job)
    jobs.record_batch(job, 1, BatchCounts(created=100))
    # When the lease has expired and Lambda's retry starts the job again
    clock.now += 61
    assert open_job(jobs, job) is StartOutcome.STARTED
    # Then the counters survive; resending batch 1 counts nothing; the job completes
    jobs.finish_ingest(job, rows=150, rejected=0, batches=2)
    assert jobs.record_batch(job, 1, BatchCounts(created=100)) is None
    state = jobs.record_batch(job, 2, BatchCounts(created=50))
    assert state is not None and state.complete and state.created == 150


def test_a_renewed_lease_keeps_a_slow_ingest_its_job(jobs: JobStore, clock: Clock) -> None:
    job = new_job()
    open_job(jobs, job, lease_s=60)
    clock.now += 50
    jobs.renew(job, lease_s=60)
    clock.now += 50  # past the first lease, within the renewed one
    assert open_job(jobs, job) is StartOutcome.BUSY


def test_released_lease_lets_the_retry_start_at_once(jobs: JobStore) -> None:
    job = new_job()
    open_job(jobs, job)
    jobs.release(job)
    assert open_job(jobs, job) is StartOutcome.STARTED


def test_a_huge_job_lists_its_first_files_and_counts_them_all(jobs: JobStore) -> None:
    job = new_job()
    open_job(jobs, job)
    jobs.finish_ingest(
        job, rows=1, rejected=0, batches=150, rejects_keys=["rejects/incoming/f.csv.rejects.csv"]
    )
    for batch in range(1, 151):
        jobs.record_batch(
            job, batch, BatchCounts(rejected_by_bik=1, rejects_key=f"rejects/x.rejects-{batch:05d}.jsonl")
        )
    state = jobs.get(job)
    assert state is not None
    report = state.report(finished_at="t")
    assert len(report["rejects_files"]) == 101  # the ingest file and the first 100 batches' files
    assert report["rejects_file_count"] == 151


def test_delivery_progress_is_kept_per_batch_with_the_digest_of_its_records(jobs: JobStore) -> None:
    # Given progress saved for batch 2 of a job
    job_id = new_job()
    open_job(jobs, job_id)
    jobs.save_progress(job_id, 2, "digest-a", '{"settled":[[0,5]]}')
    # Then batch 2 finds it with its digest, another batch finds none, and neither is counted
    assert jobs.batch_status(job_id, 2) == BatchStatus(False, "digest-a", '{"settled":[[0,5]]}')
    assert jobs.batch_status(job_id, 3) == BatchStatus(counted=False)
    # And a later receive's progress replaces it
    jobs.save_progress(job_id, 2, "digest-b", '{"settled":[[0,9]]}')
    assert jobs.batch_status(job_id, 2) == BatchStatus(False, "digest-b", '{"settled":[[0,9]]}')


def test_progress_too_large_for_an_item_is_not_kept(jobs: JobStore) -> None:
    job_id = new_job()
    jobs.save_progress(job_id, 1, "d", "x" * 300_001)
    assert jobs.batch_status(job_id, 1) == BatchStatus(counted=False)


def test_counting_a_batch_with_progress_counts_it_once_and_drops_the_progress(jobs: JobStore) -> None:
    # Given a job whose batch 1 has progress but no final outcome yet
    job_id = new_job()
    open_job(jobs, job_id)
    jobs.save_progress(job_id, 1, "d", "{}")
    # When it is counted, twice
    first = jobs.record_batch(job_id, 1, BatchCounts(created=3))
    second = jobs.record_batch(job_id, 1, BatchCounts(created=3))
    # Then it counts once, and later progress (a late delivery) is not kept for a counted batch
    assert first is not None and first.created == 3 and second is None
    jobs.save_progress(job_id, 1, "d", "{}")
    assert jobs.batch_status(job_id, 1) == BatchStatus(counted=True)


def test_a_count_mark_without_progress_is_counted_and_takes_no_progress(
    jobs: JobStore, stack: RunningStack
) -> None:
    # Given a batch marked counted as marks were first written: an item with the key alone
    job_id = new_job()
    open_job(jobs, job_id)
    stack.client("dynamodb").put_item(
        TableName=stack.info["jobs_table"], Item={"pk": {"S": f"job#{job_id}#batch#1"}}
    )
    # Then it is counted: it is not counted again, and no progress is kept for it
    assert jobs.batch_status(job_id, 1) == BatchStatus(counted=True)
    assert jobs.record_batch(job_id, 1, BatchCounts(created=3)) is None
    jobs.save_progress(job_id, 1, "d", "{}")
    assert jobs.batch_status(job_id, 1) == BatchStatus(counted=True)


def test_reasons_are_summed_on_the_job_and_kept_to_a_bounded_number(jobs: JobStore) -> None:
    # Given a job, and batches that report why their records failed
    job = new_job()
    open_job(jobs, job)
    jobs.add_reasons(job, {'"email" must be a valid email': 2, "BIK answered 503": 1})
    jobs.add_reasons(job, {'"email" must be a valid email': 3})
    # When far more distinct reasons arrive than an item should hold
    for n in range(60):
        jobs.add_reasons(job, {f"reason {n}": 1})
    # Then the first reasons are summed, at most 50 are kept by name and the rest are counted together
    state = jobs.get(job)
    assert state is not None
    assert state.reasons['"email" must be a valid email'] == 5
    assert state.reasons["BIK answered 503"] == 1
    assert len(state.reasons) == 50
    assert sum(state.reasons.values()) + state.reasons_other == 66


def test_a_job_item_from_before_reasons_were_kept_counts_them_together(
    stack: RunningStack, jobs: JobStore
) -> None:
    # Given a job item written without a reasons map (by code before this one)
    job = new_job()
    stack.client("dynamodb").put_item(
        TableName=stack.info["jobs_table"], Item={"pk": {"S": f"job#{job}"}, "bucket": {"S": "b"}}
    )
    # When a batch adds its reasons, then they are counted, not lost and not an error
    jobs.add_reasons(job, {"BIK answered 503": 4})
    state = jobs.get(job)
    assert state is not None and (state.reasons, state.reasons_other) == ({}, 4)
