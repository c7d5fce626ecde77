"""The upsert worker: work-queue messages become BIK user properties.

Each message is the API body (plus optional job metadata). Records are checked by the same record
core as files; the valid ones are delivered by :func:`bik_sync.delivery.deliver`. A message whose
records could not all be delivered fails (SQS delivers it again) until its last allowed receive,
when the undelivered records go to ``failed/`` and the message is acknowledged: only a crash leaves a
message for the DLQ. Counters are added once per batch, when the batch's outcome is final.

What a failed receive did settle (records BIK confirmed or refused) is kept in the job table, so the
next receive sends only the rest: a record is not sent again once BIK has confirmed it, and it is
never in ``failed/`` while BIK confirmed it.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3

from bik_sync import jsonbytes, layout, signing
from bik_sync.bik.client import BikClient
from bik_sync.clock import WORKER_FINISH_S, Deadline
from bik_sync.delivery import DeliveryOutcome, DeliveryProgress, deliver
from bik_sync.jobs import BatchCounts, BatchStatus, JobStore
from bik_sync.messages import JobMeta, MalformedMessage, parse_work_message
from bik_sync.observability import add_metric, logger
from bik_sync.outcome import OTHER_REASONS, ReasonTally
from bik_sync.ports import Bik, Jobs, ObjectStore
from bik_sync.records import JsonlRejectsWriter, check_record
from bik_sync.reporting import malformed_report, write_report_if_complete
from bik_sync.secrets import make_token_provider
from bik_sync.settings import WorkerSettings, get_settings
from bik_sync.signing import KeyProvider, make_key_provider
from bik_sync.storage import S3ObjectStore, put_json

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

# (row number, record, reason) of a record that goes to a rejects or failed file.
_Entry = tuple[int, Any, str]


class DeliveryIncomplete(RuntimeError):
    """Some records were not delivered this time; SQS will deliver the message again."""


@dataclass(frozen=True, slots=True)
class WorkerDeps:
    """What the worker works with: its settings and the adapters (or the tests' fakes)."""

    settings: WorkerSettings
    objects: ObjectStore
    jobs: Jobs
    bik: Bik
    signing_key: KeyProvider  # checks that a message's job metadata comes from ingest


def worker_deps(
    settings: WorkerSettings, *, s3: S3Client, dynamodb: DynamoDBClient, secretsmanager: SecretsManagerClient
) -> WorkerDeps:
    """The ports over real clients (the BIK client reads its token from Secrets Manager, lazily)."""
    token = make_token_provider(
        settings.bik_secret_id, max_age_s=settings.secret_max_age_s, client=secretsmanager
    )
    client = BikClient(
        settings.bik_api_url,
        token,
        connect_timeout_s=settings.bik_connect_timeout_s,
        read_timeout_s=settings.bik_read_timeout_s,
        allow_http=settings.bik_allow_http,
        max_pool=settings.bik_max_in_flight,
        max_attempts=settings.bik_max_attempts,
        app_id=settings.bik_app_id,
    )
    return WorkerDeps(
        settings=settings,
        objects=S3ObjectStore(s3),
        jobs=JobStore(settings.jobs_table_name, dynamodb),
        bik=client,
        signing_key=make_key_provider(settings.job_signing_secret_id, client=secretsmanager),
    )


@functools.cache
def default_deps() -> WorkerDeps:
    """Clients built once per execution environment, on first use (not at import)."""
    return worker_deps(
        get_settings(WorkerSettings),
        s3=boto3.client("s3"),
        dynamodb=boto3.client("dynamodb"),
        secretsmanager=boto3.client("secretsmanager"),
    )


def process_work_batch(event: dict[str, Any], context: LambdaContext, deps: WorkerDeps) -> dict[str, Any]:
    """Deliver a work-queue batch; returns the partial batch response SQS expects."""
    if not _is_sqs_batch(event):
        # Only the work queue's event source invokes this function: anything else is a mistake to
        # log, not a crash to retry.
        shape = sorted(map(str, event))[:10] if isinstance(event, dict) else type(event).__name__
        logger.error("event is not an SQS batch; ignored", event_shape=shape)
        return {"batchItemFailures": []}
    deadline = Deadline.from_context(context).reserve(WORKER_FINISH_S)
    records: list[dict[str, Any]] = event["Records"]
    # Messages are delivered side by side; requests in flight stay within bik_max_in_flight in all
    # (the pressure on BIK): each message gets its share, for the rare message larger than a batch.
    in_flight = deps.settings.bik_max_in_flight
    per_message = max(1, in_flight // max(1, len(records)))
    # The partial batch response is built here rather than by Powertools' (Async)BatchProcessor,
    # which did the same: each message runs, the ids of those that raised are the failures. Importing
    # the batch utility imports every Powertools event data class and costs ~25 ms of CPU at each
    # cold start (a tenth of `import boto3`) for this one loop; it also ran an asyncio loop whose
    # only work was to wait for these threads.
    failures: list[dict[str, str]] = []
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="deliver") as executor:
        started = [_start(record, executor, deps, deadline, per_message) for record in records]
        for record, (receive_count, work) in zip(records, started, strict=True):
            if work is None or not _succeeded(work, record["messageId"], receive_count):
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def _start(
    record: dict[str, Any], executor: ThreadPoolExecutor, deps: WorkerDeps, deadline: Deadline, in_flight: int
) -> tuple[int, Future[None] | None]:
    """The message's receive count and its work under way; no work for a record that cannot be read."""
    try:
        receive_count = int(record["attributes"]["ApproximateReceiveCount"] or 1)
        message_id, body = record["messageId"], record["body"]
    except (KeyError, TypeError, ValueError):
        return 0, None  # SQS never sends such a record: it fails, as it did in Powertools' processor
    work = executor.submit(process_message, message_id, body, receive_count, deps, deadline, in_flight)
    return receive_count, work


def _succeeded(work: Future[None], message_id: str, receive_count: int) -> bool:
    """Whether the message is done (False: SQS delivers it again, and the log says why)."""
    try:
        work.result()
    except DeliveryIncomplete as exc:
        logger.warning("message will be retried", message_id=message_id, reason=str(exc))
        return False
    except Exception:  # noqa: BLE001 - one message's crash fails that message only, as a batch item
        # A crash: SQS retries the message, then the DLQ keeps it. The log says why.
        logger.exception("message failed", message_id=message_id, receive_count=receive_count)
        return False
    return True


def _is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records
    )


def process_message(
    message_id: str, body: str, receive_count: int, deps: WorkerDeps, deadline: Deadline, in_flight: int = 1
) -> None:
    """One work message: checked, delivered from where earlier receives left it, counted once."""
    try:
        message = parse_work_message(body)
    except MalformedMessage as exc:
        _reject_malformed(message_id, body, str(exc), deps)
        return
    claimed = message.job
    if claimed is not None and not _signed_by_ingest(claimed, message.records, deps):
        # Anyone may send to the queue; only ingest can attach records to a job's batch. Such a
        # message is another system's: its records are a job of their own, nothing is dropped.
        logger.warning("job metadata is not ingest's; the message is a job of its own", message_id=message_id)
        add_metric("ForgedJobMetadata", 1)
        claimed = None
    job = claimed or _open_message_job(message_id, len(message.records), deps)
    if claimed is not None and not _names_a_known_batch(claimed, deps):
        # Job metadata is ingest's to write; a sender cannot attach records to a job by naming it.
        _reject_malformed(message_id, body, '"job" names no batch of a known job', deps)
        return
    # Messages are handled in threads side by side: keys must stay with the thread that set them.
    logger.thread_safe_append_keys(
        job_id=job.job_id, correlation_id=job.job_id, batch=job.batch, message_id=message_id
    )
    try:
        status = deps.jobs.batch_status(job.job_id, job.batch)
        if status.counted:
            _already_counted(job, deps)
        else:
            last_try = receive_count >= deps.settings.max_receive_count
            _process(message.records, job, last_try, deps, deadline, in_flight, status)
    finally:
        logger.thread_safe_clear_keys()


def _open_message_job(message_id: str, records: int, deps: WorkerDeps) -> JobMeta:
    """A message from another system is a job of its own, with one batch."""
    job = JobMeta(
        job_id=f"sqs-{message_id}",
        bucket=deps.settings.data_bucket,
        key=layout.message_job_key(message_id),
        batch=1,
        rows=tuple(range(1, records + 1)),
    )
    deps.jobs.open_message_job(job.job_id, bucket=job.bucket, key=job.key, rows=records)
    return job


def _signed_by_ingest(job: JobMeta, records: list[Any], deps: WorkerDeps) -> bool:
    if not job.sig or not all(isinstance(record, dict) for record in records):
        return False
    try:
        digest = signing.digest_of(records)
    except (TypeError, ValueError):  # a record JSON cannot encode again: not what ingest sent
        return False
    return signing.verify(deps.signing_key(), job.to_json(), job.sig, digest)


def _names_a_known_batch(job: JobMeta, deps: WorkerDeps) -> bool:
    state = deps.jobs.get(job.job_id)
    return (
        state is not None and job.batch >= 1 and not (state.ingest_done and job.batch > state.batches_total)
    )


def _already_counted(job: JobMeta, deps: WorkerDeps) -> None:
    """A redelivery of a batch whose outcome is final: send nothing again, count nothing again."""
    logger.info("batch already counted; redelivery ignored")
    # The first delivery may have failed just after counting, before the report was written.
    write_report_if_complete(deps.jobs.get(job.job_id), deps.jobs, deps.objects)


def _process(
    records: list[Any],
    job: JobMeta,
    last_try: bool,
    deps: WorkerDeps,
    deadline: Deadline,
    in_flight: int,
    status: BatchStatus,
) -> None:
    """Check and deliver one batch, resuming from what earlier receives of this message settled."""
    valid, valid_rows, invalid = _check(records, job.rows, deps.settings)
    digest = records_digest(valid)
    progress = resume_progress(status, digest, len(valid))
    settled_before = len(progress.settled)
    pending = progress.pending(len(valid))
    attempt = _deliver([valid[i] for i in pending], deps, deadline, in_flight)
    progress, outcome = progress.after(pending, attempt)
    if outcome.failed and not last_try:
        if len(progress.settled) > settled_before:
            deps.jobs.save_progress(job.job_id, job.batch, digest, progress.to_json())
        raise DeliveryIncomplete(
            f"{len(outcome.failed)} of {len(valid)} records not delivered; SQS will retry"
        )
    rejects = invalid + [(valid_rows[i], valid[i], reason) for i, reason in outcome.rejected]
    rejects += [(0, {}, reason) for reason in outcome.unmatched]  # no row or record is BIK's to blame
    failed = [(valid_rows[i], valid[i], reason) for i, reason in outcome.failed]
    counts = BatchCounts(
        created=outcome.created,
        updated=outcome.updated,
        rejected_invalid=len(invalid),
        rejected_by_bik=len(outcome.rejected) + len(outcome.unmatched),
        failed=len(failed),
        rejects_key=_write_jsonl(deps, job, layout.batch_rejects_key(job.key, job.run, job.batch), rejects),
        failed_key=_write_jsonl(deps, job, layout.batch_failed_key(job.key, job.run, job.batch), failed),
    )
    _add_reasons(job, rejects + failed, deps)
    _count(job, counts, len(records), deps)


# A batch adds its most common reasons to the job's summary; the rest count as "other reasons".
_REASONS_PER_BATCH = 5


def _add_reasons(job: JobMeta, entries: list[_Entry], deps: WorkerDeps) -> None:
    if not entries:
        return
    tally = ReasonTally()
    tally.add(reason for _, _, reason in entries)
    top = dict(tally.counts.most_common(_REASONS_PER_BATCH))
    rest = len(entries) - sum(top.values())
    if rest:
        top[OTHER_REASONS] = top.get(OTHER_REASONS, 0) + rest
    deps.jobs.add_reasons(job.job_id, top)


def _check(
    records: list[Any], rows: tuple[int, ...], settings: WorkerSettings
) -> tuple[list[dict[str, Any]], list[int], list[_Entry]]:
    """The records the record core accepts (with their rows), and the rejects with the reasons."""
    options = settings.read_options
    valid: list[dict[str, Any]] = []
    valid_rows: list[int] = []
    rejects: list[_Entry] = []
    for row, raw in zip(rows, records, strict=True):
        record, errors = check_record(raw, options)
        if record is None:
            rejects.append((row, raw, "; ".join(errors)))
        else:
            valid.append(record)
            valid_rows.append(row)
    return valid, valid_rows, rejects


def _count(job: JobMeta, counts: BatchCounts, records: int, deps: WorkerDeps) -> None:
    """Count the batch's final outcome once, and write the report when it was the job's last piece."""
    state = deps.jobs.record_batch(job.job_id, job.batch, counts)
    if state is None:  # another delivery of the same message counted it first
        _already_counted(job, deps)
        return
    rejected = counts.rejected_invalid + counts.rejected_by_bik
    add_metric("RecordsCreated", counts.created)
    add_metric("RecordsUpdated", counts.updated)
    add_metric("RecordsRejected", rejected)
    add_metric("RecordsFailed", counts.failed)
    logger.info(
        "batch done",
        records=records,
        records_created=counts.created,
        records_updated=counts.updated,
        records_rejected=rejected,
        records_failed=counts.failed,
    )
    write_report_if_complete(state, deps.jobs, deps.objects)


def records_digest(valid: list[dict[str, Any]]) -> str:
    """Names the checked records: progress applies only to the very same list.

    ASCII JSON, which encodes whatever a record holds: naming the records must never be what fails.
    """
    digest = hashlib.sha256()
    for record in valid:
        digest.update(jsonbytes.dumps(record, ensure_ascii=True, default=str))
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def resume_progress(status: BatchStatus, digest: str, records: int) -> DeliveryProgress:
    if status.progress is None:
        return DeliveryProgress()
    if status.digest != digest:
        # Same job and batch, other records (an ingest run again, or rules changed by a deploy).
        logger.warning("delivery progress was saved for other records; every record is sent")
        return DeliveryProgress()
    try:
        progress = DeliveryProgress.from_json(status.progress)
    except ValueError as exc:
        logger.warning("delivery progress ignored; every record is sent", reason=str(exc))
        return DeliveryProgress()
    if any(i >= records for i in progress.settled):
        logger.warning("delivery progress does not fit the records; every record is sent")
        return DeliveryProgress()
    logger.info("resuming batch", records_settled_before=len(progress.settled), records=records)
    return progress


def _deliver(
    valid: list[dict[str, Any]], deps: WorkerDeps, deadline: Deadline, in_flight: int
) -> DeliveryOutcome:
    if not valid:
        return DeliveryOutcome()
    settings = deps.settings
    return deliver(
        valid,
        # deliver() is typed with the concrete client but only calls upsert(): any Bik port will do.
        cast(BikClient, deps.bik),
        batch_size=settings.bik_batch_size,
        max_batch_bytes=settings.bik_max_batch_bytes,
        max_in_flight=in_flight,
        deadline=deadline.at(),
        app_id=settings.bik_app_id,
    )


def _write_jsonl(deps: WorkerDeps, job: JobMeta, key: str, rows: list[_Entry]) -> str:
    if not rows:
        return ""
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
        writer = JsonlRejectsWriter(spool)  # type: ignore[arg-type]
        for row, record, reason in rows:
            writer.write(row or None, record if isinstance(record, dict) else {"value": record}, reason)
        deps.objects.put_file(job.bucket, key, spool, "application/x-ndjson")
    return key


def _reject_malformed(message_id: str, body: str, reason: str, deps: WorkerDeps) -> None:
    """The message goes to rejects/ with the reason, and like every message it gets a report."""
    key = layout.malformed_key(message_id)
    document = {"message_id": message_id, "error": reason, "body": body}
    put_json(deps.objects, deps.settings.data_bucket, key, document)
    report_key = layout.report_key(layout.message_job_key(message_id))
    report = malformed_report(message_id, reason, rejects_key=key, report_key=report_key)
    put_json(deps.objects, deps.settings.data_bucket, report_key, report)
    add_metric("MalformedMessages", 1)
    logger.warning("malformed message rejected to S3", message_id=message_id, reason=reason, rejects_key=key)
