"""Ingest: one S3 object becomes batches on the work queue, local rejects and job counters.

The object is streamed through the record core (read, map, normalise, validate); valid records go
to the work queue in batches of the API body's shape, invalid rows to ``rejects/`` in the input's
own format. A file that cannot be read still gets a report that says why.

Everything outside is reached through the ports in :class:`IngestDeps`: :func:`ingest_deps` builds
them over boto3 clients, and the unit tests over in-memory fakes.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import boto3

from bik_sync import layout, merge_state
from bik_sync.batching import BatchPacker
from bik_sync.checkpoint import Checkpoint, Continuation, hand_over, rejects_part, storable
from bik_sync.clock import Deadline, finish_margin_s
from bik_sync.duplicates import DuplicateMerger, IdentityIndex
from bik_sync.jobs import JobStore, StartOutcome, job_id_for
from bik_sync.merge_state import StateInvalid
from bik_sync.messages import JobMeta
from bik_sync.observability import add_metric, logger
from bik_sync.outcome import ReasonTally, summarise_reasons
from bik_sync.ports import Jobs, ObjectStore, WorkQueue
from bik_sync.reading import PartRead, RowSource, find_duplicates, read_rows, reopen_records
from bik_sync.records import ReadOptions, RecordFile, RejectsWriter, UnreadableFile
from bik_sync.records.formats import open_records, resume_records
from bik_sync.reporting import report_replaced, write_report_if_complete
from bik_sync.s3_events import EventShapeError, S3ObjectRef, objects_from_event
from bik_sync.sending import BatchSender, Lease
from bik_sync.settings import IngestSettings, get_settings
from bik_sync.signing import KeyProvider, make_key_provider
from bik_sync.spill import Spill
from bik_sync.storage import (
    InputChanged,
    InputMissing,
    MappingError,
    S3ObjectStore,
    open_input,
    reopen_input,
    resolve_mapping,
)
from bik_sync.work_queue import SqsWorkQueue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

_SPOOL_BYTES = 8 * 1024 * 1024
LISTED_IGNORED_COLUMNS = 100
LISTED_NOTES = 10


class JobBusy(RuntimeError):
    """Another ingest of the same object version is running; the event is retried later."""


@dataclass(frozen=True, slots=True)
class IngestDeps:
    """What ingest works with: its settings and the adapters (or the tests' fakes)."""

    settings: IngestSettings
    objects: ObjectStore
    queue: WorkQueue
    jobs: Jobs
    signing_key: KeyProvider  # signs each work message's job metadata
    # Where a file too large for one invocation asks for the next (None: it stops 'incomplete').
    continue_queue: WorkQueue | None = None
    # Short, and renewed while reading (every third of it): a dead ingest's lease (killed, out of
    # memory, timed out) has expired before Lambda's first retry, about a minute later.
    lease_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep  # the backoff between sends the queue throttled
    # The most bytes pass 1 keeps on local disk for pass 2 (spill.py); None: half the space free.
    spill_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one object: its job, and how many rows, rejects and batches it gave."""

    job_id: str
    key: str
    status: str  # "queued", "continued", "duplicate", "unreadable", "skipped", "refused"
    rows: int = 0
    rejected: int = 0
    batches: int = 0


def ingest_deps(
    settings: IngestSettings,
    *,
    s3: S3Client,
    sqs: SQSClient,
    dynamodb: DynamoDBClient,
    secretsmanager: SecretsManagerClient,
) -> IngestDeps:
    """The ports over real clients (the signing key is read from Secrets Manager, lazily)."""
    return IngestDeps(
        settings=settings,
        objects=S3ObjectStore(s3),
        queue=SqsWorkQueue(sqs, settings.work_queue_url),
        jobs=JobStore(settings.jobs_table_name, dynamodb),
        signing_key=make_key_provider(settings.job_signing_secret_id, client=secretsmanager),
        continue_queue=(
            SqsWorkQueue(sqs, settings.ingest_continue_queue_url)
            if settings.ingest_continue_queue_url
            else None
        ),
    )


def _continue_queue(settings: IngestSettings, sqs: SQSClient) -> WorkQueue | None:
    url = settings.ingest_continue_queue_url
    return SqsWorkQueue(sqs, url) if url else None


@functools.cache
def default_deps() -> IngestDeps:
    """Clients built once per execution environment, on first use (not at import)."""
    return ingest_deps(
        get_settings(IngestSettings),
        s3=boto3.client("s3"),
        sqs=boto3.client("sqs"),
        dynamodb=boto3.client("dynamodb"),
        secretsmanager=boto3.client("secretsmanager"),
    )


def ingest_event(
    event: dict[str, Any], deps: IngestDeps, deadline: Deadline | None = None
) -> list[IngestResult]:
    """Every object the event announces becomes a job; an event of another shape is logged, not retried."""
    try:
        objects = objects_from_event(event)
    except EventShapeError as exc:
        logger.error("event is not an S3 object notification; ignored", reason=str(exc))
        return []
    return [ingest_object(ref, deps, deadline) for ref in objects]


def ingest_object(ref: S3ObjectRef, deps: IngestDeps, deadline: Deadline | None = None) -> IngestResult:
    """``deadline``: the invocation's time left (Lambda's context); ingest stops before the end."""
    if not layout.is_input(ref.key):
        logger.warning("object outside incoming/ ignored", key=ref.key)
        return IngestResult(job_id="", key=ref.key, status="skipped")
    try:
        source = open_input(deps.objects, ref)
    except InputMissing as exc:
        logger.warning("input gone before it could be read; nothing to do", key=ref.key, reason=str(exc))
        return IngestResult(job_id="", key=ref.key, status="skipped")
    if ref.key.endswith("/") and not source.body.read(1):
        source.body.close()
        logger.info("folder marker ignored (an empty object whose name ends in /)", key=ref.key)
        return IngestResult(job_id="", key=ref.key, status="skipped")
    if ref.replaced_before_read(source.etag, source.version_id) and ref.event_time is not None:
        report_replaced(ref, deps.objects, deps.jobs)  # the upload read below is the later one's job
    job_id = job_id_for(ref.bucket, ref.key, source.identity)
    # The job id is the correlation id: it ties ingest's lines to every batch's lines in the worker.
    logger.append_keys(job_id=job_id)
    logger.set_correlation_id(job_id)
    # Named by its upload time and id, so that an upload of the same key again writes files of its own.
    run = layout.job_run(source.last_modified, job_id)
    # Which upload of the key is the latest, finer than the run's second (the event's sequencer).
    order = ref.upload_order(run=run, served_etag=source.etag, last_modified=source.last_modified)
    started = deps.jobs.start(
        job_id, bucket=ref.bucket, key=ref.key, source="s3", lease_s=deps.lease_s, run=run, order=order
    )
    if started is not StartOutcome.STARTED:
        source.body.close()
        if started is StartOutcome.BUSY:
            # Raise, so that Lambda retries later: by then the other ingest has finished, or died
            # and its lease has expired.
            raise JobBusy(f"another ingest of {ref.key} holds the job's lease")
        logger.info("job already ingested; event ignored", key=ref.key)
        # Its report may have failed to be written the first time: write it now if it is due.
        write_report_if_complete(deps.jobs.get(job_id), deps.jobs, deps.objects)
        return IngestResult(job_id=job_id, key=ref.key, status="duplicate")
    try:
        with closing(source.body):
            job = JobMeta(job_id=job_id, bucket=ref.bucket, key=ref.key, batch=0, rows=(), run=run)
            # A job re-opened after its ingest died carries on from its last checkpoint, if any: on
            # this stream, from the object's start, skipping the rows done (never by byte offset).
            state = deps.jobs.get(job_id)
            resumed = dataclasses.replace(
                Checkpoint.from_json(state.checkpoint if state else ""), resume=None
            )
            served = dataclasses.replace(ref, version_id=source.version_id or ref.version_id)
            reopen = functools.partial(reopen_input, deps.objects, served, source)
            return run_job(job, served, source.body, deps, deadline or Deadline.unlimited(), reopen, resumed)
    except BaseException:
        # Let the retried event run the job again at once instead of waiting for the lease.
        deps.jobs.release(job_id)
        raise


def run_job(
    job: JobMeta,
    ref: S3ObjectRef,
    stream: BinaryIO,
    deps: IngestDeps,
    deadline: Deadline,
    reopen: Callable[[], BinaryIO],
    resumed: Checkpoint = Checkpoint(),  # noqa: B008 - frozen: the start of the file
) -> IngestResult:
    """Read the object from ``resumed`` on; finish the job, or hand it over when time runs out.

    ``stream`` is the object from its start, or from ``resumed``'s offset when it has a resume point."""
    if ref.key.endswith("/"):
        return _unreadable(
            job.job_id,
            ref,
            deps,
            "the object's name ends in '/', as a folder's does, but it holds data: upload the file "
            "under a name (incoming/folder/customers.csv)",
        )
    lease = Lease(deps.jobs, job.job_id, deps.lease_s)
    # One margin for the whole invocation, both passes: what is kept for sending and handing over.
    reading_until = deadline.reserve(finish_margin_s(deadline))
    limit = sys.maxsize  # rows pass 2 may read: all, unless pass 1 could not reach the end
    with ExitStack() as stack:
        try:
            options, mapping_origin = _read_options(deps, ref)
            record_file = _open_part(stream, ref.key, options, resumed)
            rows_from: RowSource = record_file
            if resumed.part and not resumed.merge.indexing:
                # Pass 1 is done: the groups, and the people still open, are the earlier part's.
                merger = merge_state.load_merger(deps.objects, ref.bucket, job.job_id, resumed.merge)
            else:  # rows of one person are merged in file order (duplicates.py): a first pass finds them
                # A pass 1 from the first row keeps the rows it builds for pass 2 (spill.py).
                fresh = not resumed.merge.indexed and not resumed.rows
                spill = stack.enter_context(closing(Spill(max_bytes=deps.spill_bytes))) if fresh else None
                with closing(IdentityIndex()) as index:
                    merge_state.load_index(deps.objects, ref.bucket, job.job_id, resumed.merge, index)
                    indexed, finished = find_duplicates(
                        record_file,
                        index,
                        lease,
                        reading_until,
                        skip=resumed.merge.indexed,
                        must_progress=resumed.part > 0,
                        spill=spill,
                    )
                    if not finished and deps.continue_queue is not None:
                        return _index_later(job, ref, deps, resumed, index, indexed)
                    merger = DuplicateMerger(index.groups())
                if not finished:  # and no continuation: pass 2 reads only the rows pass 1 read
                    limit = indexed
                if finished and spill is not None and spill.usable:
                    rows_from = spill  # the file's metadata stays pass 1's: it has read all of it
                else:
                    second, record_file = reopen_records(reopen, ref.key, options)
                    stack.enter_context(closing(second))
                    rows_from = record_file
        except StateInvalid as exc:
            return stop_job(job, deps, resumed, str(exc))
        except (UnreadableFile, MappingError, InputChanged) as exc:
            merge_state.discard(deps.objects, ref.bucket, resumed.merge.key)
            return _unreadable(job.job_id, ref, deps, str(exc))
        return _read_part(
            job,
            ref,
            deps,
            record_file,
            rows_from,
            merger,
            lease,
            reading_until,
            resumed,
            mapping_origin,
            limit,
        )


def _index_later(
    job: JobMeta, ref: S3ObjectRef, deps: IngestDeps, resumed: Checkpoint, index: IdentityIndex, indexed: int
) -> IngestResult:
    """Pass 1 did not reach the end: its index goes to the next invocation, which reads on from there
    (pass 2, and with it the first batch, starts only once the whole file's groups are known)."""
    part = resumed.part + 1
    carried = merge_state.save_index(deps.objects, job, part, index, indexed)
    result = _continue_later(job, ref, deps, dataclasses.replace(resumed, part=part, merge=carried))
    merge_state.discard(deps.objects, ref.bucket, resumed.merge.key, keep=carried.key)
    return result


def stop_job(job: JobMeta, deps: IngestDeps, resumed: Checkpoint, reason: str) -> IngestResult:
    """End the job ``incomplete`` with what the earlier parts read, and why it stopped there.

    Rows whose values were held to be merged with later rows of their person (merge_state.py) were
    never sent: they are said in the error, and not counted as read, so the report still adds up.
    """
    merge = resumed.merge
    if merge.indexing:
        error = f"stopped before any row was sent, while looking for rows of one person: {reason}"
    else:
        error = f"stopped before row {resumed.next_row}: {reason}"
    if merge.held_rows:
        error += (
            f"; {merge.held_rows} rows of {merge.held} people, held to be merged with their later rows, "
            "were not sent"
        )
    rows = resumed.rows - merge.held_rows
    logger.warning("ingest stopped part way", key=job.key, part=resumed.part, reason=reason)
    state = deps.jobs.finish_ingest(
        job.job_id,
        rows=rows,
        rejected=resumed.rejected,
        batches=resumed.batches,
        rejects_keys=resumed.rejects_keys,
        details={
            "status": "incomplete",
            "error": error,
            "invocations": resumed.part,
            "duplicates": resumed.duplicates - (merge.held_rows - merge.held),
        },
    )
    merge_state.discard(deps.objects, job.bucket, merge.key)
    write_report_if_complete(state, deps.jobs, deps.objects)
    return IngestResult(job.job_id, job.key, "incomplete", rows, resumed.rejected, resumed.batches)


def _open_part(stream: BinaryIO, name: str, options: ReadOptions, resumed: Checkpoint) -> RecordFile:
    """The file from its start, or read on from the checkpoint's offset (``stream`` starts there)."""
    if resumed.resume is None:
        return open_records(stream, name, options)
    return resume_records(stream, resumed.resume, options)


def _read_part(
    job: JobMeta,
    ref: S3ObjectRef,
    deps: IngestDeps,
    record_file: RecordFile,
    rows_from: RowSource,
    merger: DuplicateMerger,
    lease: Lease,
    reading_until: Deadline,
    resumed: Checkpoint,
    mapping_origin: str,
    limit: int = sys.maxsize,
) -> IngestResult:
    """This invocation's rows (``rows_from``: ``record_file``, or pass 1's spill of it) to work
    messages and a rejects file; then finish, or hand over."""
    packer = BatchPacker(
        max_records=deps.settings.bik_batch_size, max_bytes=deps.settings.bik_max_batch_bytes
    )
    sender = BatchSender(
        deps.queue, job, packer=packer, signing_key=deps.signing_key, sleep=deps.sleep, sent=resumed.batches
    )
    reasons = ReasonTally()
    # The sender's thread stops with the block, also when reading fails before the flush.
    with closing(sender), tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        rejects = RejectsWriter(spool, record_file)  # type: ignore[arg-type]
        read = read_rows(
            rows_from,
            rejects,
            reasons,
            sender,
            merger,
            lease,
            reading_until,
            skip=resumed.rows if resumed.resume is None else 0,
            # A part that has just finished pass 1 made its progress there.
            must_progress=resumed.part > 0 and not resumed.merge.indexing,
            limit=limit,
        )
        continues = bool(read.stopped_before) and deps.continue_queue is not None
        if not continues:  # else the people still open go to the next part (merge_state.py)
            for number, record in merger.flush():
                sender.add(number, record)
        sender.flush()
        part = rejects_part(resumed, continues)
        rejects_keys = [*resumed.rejects_keys, *_put_rejects(spool, rejects, job, deps, part)]
    add_metric("RowsRead", read.rows)
    add_metric("RecordsRejected", rejects.count)
    if reasons.counts:
        deps.jobs.add_reasons(job.job_id, summarise_reasons(reasons.counts))
    reached = Checkpoint(
        part=resumed.part + 1,
        rows=resumed.rows + read.rows,
        rejected=resumed.rejected + rejects.count,
        batches=sender.batches,
        next_row=read.stopped_before,
        rejects_keys=tuple(rejects_keys),
        duplicates=resumed.duplicates + merger.duplicates,
        resume=storable(read.resume),
    )
    if continues:
        # Written before the checkpoint that names it: should this invocation die in between, the
        # next one resumes from the previous checkpoint, whose state object is still there.
        reached = dataclasses.replace(
            reached, merge=merge_state.save_merger(deps.objects, job, reached.part, merger)
        )
        result = _continue_later(job, ref, deps, reached)
    else:
        if read.stopped_before and isinstance(rows_from, Spill):
            rows_from.as_far_as_read(record_file)  # the report names only what the rows read met
        result = _finish(job, ref, deps, record_file, reached, read, mapping_origin)
    merge_state.discard(deps.objects, ref.bucket, resumed.merge.key, keep=reached.merge.key)
    return result


def _finish(
    job: JobMeta,
    ref: S3ObjectRef,
    deps: IngestDeps,
    record_file: RecordFile,
    reached: Checkpoint,
    read: PartRead,
    mapping_origin: str,
) -> IngestResult:
    """The whole file is read (or reading stopped for good): the job's totals, and its report if due."""
    error = read.error
    if read.stopped_before:
        error = (
            f"stopped before row {read.stopped_before}: the file is too large to read in one invocation "
            "and INGEST_CONTINUE_QUEUE_URL is not set"
        )
    details: dict[str, Any] = {
        "status": "incomplete" if error else "complete",
        "format": record_file.format,
        "encoding": record_file.encoding,
        "delimiter": record_file.delimiter,
        # The first columns and how many: a header of 50,000 columns must not outgrow the job's item.
        "ignored_columns": list(record_file.ignored_columns[:LISTED_IGNORED_COLUMNS]),
        "ignored_column_count": len(record_file.ignored_columns),
        "mapping": mapping_origin,
        "duplicates": reached.duplicates,  # rows merged into an earlier row of the same person
    }
    if record_file.notes:  # what was read differently: title rows skipped, JSON members not read
        details["notes"] = record_file.notes[:LISTED_NOTES]
    if error:
        details["error"] = error
    if reached.part > 1:
        details["invocations"] = reached.part
    state = deps.jobs.finish_ingest(
        job.job_id,
        rows=reached.rows,
        rejected=reached.rejected,
        batches=reached.batches,
        rejects_keys=reached.rejects_keys,
        details=details,
    )
    logger.info(
        "ingest finished",
        key=ref.key,
        rows=reached.rows,
        rejected=reached.rejected,
        duplicates=reached.duplicates,
        batches=reached.batches,
        invocations=reached.part,
        error=error or None,
    )
    write_report_if_complete(state, deps.jobs, deps.objects)
    return IngestResult(job.job_id, ref.key, "queued", reached.rows, reached.rejected, reached.batches)


def _continue_later(job: JobMeta, ref: S3ObjectRef, deps: IngestDeps, reached: Checkpoint) -> IngestResult:
    """Store the checkpoint and ask for a fresh invocation that carries on from it."""
    assert deps.continue_queue is not None
    request = Continuation(job.job_id, ref.bucket, ref.key, ref.version_id, job.run, reached.part)
    hand_over(deps.jobs, deps.continue_queue, request, reached, deps.signing_key(), deps.sleep)
    return IngestResult(job.job_id, ref.key, "continued", reached.rows, reached.rejected, reached.batches)


def _read_options(deps: IngestDeps, ref: S3ObjectRef) -> tuple[ReadOptions, str]:
    """The record core's options, and where the mapping came from; raises MappingError when the
    mapping file cannot be read."""
    settings = deps.settings
    mapping, origin = resolve_mapping(deps.objects, ref.bucket, ref.key, settings.mapping_uri)
    options = ReadOptions(
        mapping=mapping, default_region=settings.default_phone_region, phone_format=settings.phone_format
    )
    return options, origin


def _put_rejects(
    spool: IO[bytes], rejects: RejectsWriter, job: JobMeta, deps: IngestDeps, part: int = 0
) -> list[str]:
    if not rejects.count:
        return []
    key = layout.ingest_rejects_key(job.key, job.run, rejects.extension, part)
    deps.objects.put_file(job.bucket, key, spool, rejects.content_type)
    return [key]


def _unreadable(job_id: str, ref: S3ObjectRef, deps: IngestDeps, reason: str) -> IngestResult:
    logger.warning("input cannot be read", key=ref.key, reason=reason)
    state = deps.jobs.finish_ingest(
        job_id, rows=0, rejected=0, batches=0, details={"status": "unreadable", "error": reason}
    )
    write_report_if_complete(state, deps.jobs, deps.objects)
    return IngestResult(job_id=job_id, key=ref.key, status="unreadable")
