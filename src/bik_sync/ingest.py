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
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import boto3

from bik_sync import layout
from bik_sync.batching import BatchPacker
from bik_sync.clock import INGEST_FINISH_S, Deadline
from bik_sync.duplicates import DuplicateMerger
from bik_sync.jobs import JobStore, StartOutcome, job_id_for
from bik_sync.messages import JobMeta, build_work_message, encode_record
from bik_sync.observability import add_metric, logger
from bik_sync.outcome import ReasonTally, summarise_reasons
from bik_sync.ports import Jobs, ObjectStore, QueueEntry, WorkQueue
from bik_sync.records import ReadOptions, RecordFile, RejectsWriter, UnreadableFile, open_records
from bik_sync.records.errors import ReadingStopped
from bik_sync.reporting import write_report_if_complete
from bik_sync.s3_events import EventShapeError, S3ObjectRef, objects_from_event
from bik_sync.settings import IngestSettings, get_settings
from bik_sync.signing import KeyProvider, make_key_provider
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

# SendMessageBatch takes at most 10 entries; keep a batch's total under SQS's classic 256 KiB.
_SQS_BATCH_ENTRIES = 10
_SQS_BATCH_BYTES = 250_000
_SEND_ATTEMPTS = 3
_SPOOL_BYTES = 8 * 1024 * 1024
LISTED_IGNORED_COLUMNS = 100


class JobBusy(RuntimeError):
    """Another ingest of the same object version is running; the event is retried later."""


@dataclass(frozen=True, slots=True)
class IngestDeps:
    settings: IngestSettings
    objects: ObjectStore
    queue: WorkQueue
    jobs: Jobs
    signing_key: KeyProvider  # signs each work message's job metadata
    # Short, and renewed while reading (every third of it): a dead ingest's lease (killed, out of
    # memory, timed out) has expired before Lambda's first retry, about a minute later.
    lease_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep  # the backoff between sends the queue throttled


@dataclass(frozen=True, slots=True)
class IngestResult:
    job_id: str
    key: str
    status: str  # "queued", "duplicate", "unreadable", "skipped"
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
    )


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
    job_id = job_id_for(ref.bucket, ref.key, source.identity)
    # The job id is the correlation id: it ties ingest's lines to every batch's lines in the worker.
    logger.append_keys(job_id=job_id)
    logger.set_correlation_id(job_id)
    # Named by its upload time and id, so that an upload of the same key again writes files of its own.
    run = layout.job_run(source.last_modified, job_id)
    started = deps.jobs.start(
        job_id, bucket=ref.bucket, key=ref.key, source="s3", lease_s=deps.lease_s, run=run
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
            reopen = functools.partial(reopen_input, deps.objects, ref, source)
            return _run_job(job, ref, source.body, deps, deadline or Deadline.unlimited(), reopen)
    except BaseException:
        # Let the retried event run the job again at once instead of waiting for the lease.
        deps.jobs.release(job_id)
        raise


def _run_job(
    job: JobMeta,
    ref: S3ObjectRef,
    stream: BinaryIO,
    deps: IngestDeps,
    deadline: Deadline,
    reopen: Callable[[], BinaryIO],
) -> IngestResult:
    job_id = job.job_id
    if ref.key.endswith("/"):
        return _unreadable(
            job_id,
            ref,
            deps,
            "the object's name ends in '/', as a folder's does, but it holds data: upload the file "
            "under a name (incoming/folder/customers.csv)",
        )
    try:
        options, mapping_origin = _read_options(deps, ref)
        record_file = open_records(stream, ref.key, options)
    except (UnreadableFile, MappingError) as exc:
        return _unreadable(job_id, ref, deps, str(exc))
    lease = _Lease(deps, job_id)
    try:  # rows of one person are merged in file order (duplicates.py): a first pass finds them
        merger, second, record_file = _find_duplicates(record_file, reopen, ref, options, lease, deadline)
    except (UnreadableFile, InputChanged) as exc:
        return _unreadable(job_id, ref, deps, str(exc))

    sender = _BatchSender(deps, job)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool, closing(second):
        rejects = RejectsWriter(spool, record_file)  # type: ignore[arg-type]
        reasons = ReasonTally()
        rows, error = _read_rows(record_file, rejects, reasons, sender, merger, lease, deadline)
        for number, record in merger.flush():
            sender.add(number, record)
        sender.flush()
        rejects_keys = _put_rejects(spool, rejects, job, deps)

    add_metric("RowsRead", rows)
    add_metric("RecordsRejected", rejects.count)
    details: dict[str, Any] = {
        "status": "incomplete" if error else "complete",
        "format": record_file.format,
        "encoding": record_file.encoding,
        "delimiter": record_file.delimiter,
        # The first columns and how many: a header of 50,000 columns must not outgrow the job's item.
        "ignored_columns": list(record_file.ignored_columns[:LISTED_IGNORED_COLUMNS]),
        "ignored_column_count": len(record_file.ignored_columns),
        "mapping": mapping_origin,
        "duplicates": merger.duplicates,  # rows merged into an earlier row of the same person
    }
    if error:
        details["error"] = error
    if reasons.counts:
        deps.jobs.add_reasons(job_id, summarise_reasons(reasons.counts))
    state = deps.jobs.finish_ingest(
        job_id,
        rows=rows,
        rejected=rejects.count,
        batches=sender.batches,
        rejects_keys=rejects_keys,
        details=details,
    )
    logger.info(
        "ingest finished",
        key=ref.key,
        rows=rows,
        rejected=rejects.count,
        duplicates=merger.duplicates,
        batches=sender.batches,
        error=error or None,
    )
    write_report_if_complete(state, deps.jobs, deps.objects)
    return IngestResult(
        job_id=job_id, key=ref.key, status="queued", rows=rows, rejected=rejects.count, batches=sender.batches
    )


def _read_options(deps: IngestDeps, ref: S3ObjectRef) -> tuple[ReadOptions, str]:
    """The record core's options, and where the mapping came from; raises MappingError when the
    mapping file cannot be read."""
    settings = deps.settings
    mapping, origin = resolve_mapping(deps.objects, ref.bucket, ref.key, settings.mapping_uri)
    options = ReadOptions(
        mapping=mapping, default_region=settings.default_phone_region, phone_format=settings.phone_format
    )
    return options, origin


def _find_duplicates(
    record_file: RecordFile,
    reopen: Callable[[], BinaryIO],
    ref: S3ObjectRef,
    options: ReadOptions,
    lease: _Lease,
    deadline: Deadline,
) -> tuple[DuplicateMerger, BinaryIO, RecordFile]:
    """Pass 1 over the file, then the object opened again for pass 2 (a RecordFile is read once)."""
    reading_until = deadline.reserve(INGEST_FINISH_S)

    def keep_going() -> bool:
        lease.keep_alive()
        return not reading_until.expired()

    def on_read() -> None:  # also while lines that are no rows are read
        if not keep_going():
            raise ReadingStopped

    record_file.on_read(on_read)
    merger = DuplicateMerger.from_rows(record_file, keep_going=keep_going)
    second = reopen()
    try:
        return merger, second, open_records(second, ref.key, options)
    except UnreadableFile:
        second.close()
        raise


def _read_rows(
    record_file: RecordFile,
    rejects: RejectsWriter,
    reasons: ReasonTally,
    sender: _BatchSender,
    merger: DuplicateMerger,
    lease: _Lease,
    deadline: Deadline,
) -> tuple[int, str]:
    """Every row to the sender or the rejects, until the end, damage, or time running out.

    Returns the rows read and, when reading stopped early, why.
    """
    reading_until = deadline.reserve(INGEST_FINISH_S)

    def on_read() -> None:
        # As each piece of the file is read, rows or not (a gzip of blank lines has no rows to count).
        lease.keep_alive()
        if reading_until.expired():
            raise ReadingStopped

    record_file.on_read(on_read)
    rows = 0
    last_row = 1
    try:
        for row in record_file:
            last_row = row.number
            rows += 1
            if row.record is None:
                rejects.write(row)
                reasons.add(row.errors)
            else:
                for number, record in merger.feed(row.number, row.record):
                    sender.add(number, record)
    except UnreadableFile as exc:
        # Rows read before the damage stay processed; the report says where reading stopped.
        return rows, str(exc)
    except ReadingStopped:
        return rows, (
            f"stopped after row {last_row}: the file is too large to read in one invocation; split "
            "it and upload the rest again"
        )
    return rows, ""


def _put_rejects(spool: IO[bytes], rejects: RejectsWriter, job: JobMeta, deps: IngestDeps) -> list[str]:
    if not rejects.count:
        return []
    key = layout.ingest_rejects_key(job.key, job.run, rejects.extension)
    deps.objects.put_file(job.bucket, key, spool, rejects.content_type)
    return [key]


def _unreadable(job_id: str, ref: S3ObjectRef, deps: IngestDeps, reason: str) -> IngestResult:
    logger.warning("input cannot be read", key=ref.key, reason=reason)
    state = deps.jobs.finish_ingest(
        job_id, rows=0, rejected=0, batches=0, details={"status": "unreadable", "error": reason}
    )
    write_report_if_complete(state, deps.jobs, deps.objects)
    return IngestResult(job_id=job_id, key=ref.key, status="unreadable")


class _Lease:
    """Renews the ingest's lease on the job now and then, while rows are being read."""

    def __init__(self, deps: IngestDeps, job_id: str) -> None:
        self._deps = deps
        self._job_id = job_id
        self._renewed = time.monotonic()

    def keep_alive(self) -> None:
        if time.monotonic() - self._renewed > self._deps.lease_s / 3:
            self._deps.jobs.renew(self._job_id, lease_s=self._deps.lease_s)
            self._renewed = time.monotonic()


class _BatchSender:
    """Groups valid records into work messages (the batching rule) and sends them in SQS batches."""

    def __init__(self, deps: IngestDeps, job: JobMeta) -> None:
        self._deps = deps
        self._job = job
        self._packer = BatchPacker(
            max_records=deps.settings.bik_batch_size, max_bytes=deps.settings.bik_max_batch_bytes
        )
        self._records: list[bytes] = []  # each record encoded once: its size, then the message
        self._rows: list[int] = []
        self._entries: list[QueueEntry] = []
        self._entries_bytes = 0
        self.batches = 0

    def add(self, row: int, record: Mapping[str, Any]) -> None:
        encoded = encode_record(record)
        if self._packer.add(len(encoded)):
            self._close_batch()
        self._records.append(encoded)
        self._rows.append(row)

    def flush(self) -> None:
        if self._records:
            self._close_batch()
        self._send_entries()

    def _close_batch(self) -> None:
        self.batches += 1
        meta = dataclasses.replace(self._job, batch=self.batches, rows=tuple(self._rows))
        body = build_work_message(self._records, meta, self._deps.signing_key())
        if self._entries and (
            len(self._entries) >= _SQS_BATCH_ENTRIES or self._entries_bytes + len(body) > _SQS_BATCH_BYTES
        ):
            self._send_entries()
        self._entries.append(QueueEntry(id=str(self.batches), body=body))
        self._entries_bytes += len(body)
        self._records, self._rows = [], []

    def _send_entries(self) -> None:
        entries = self._entries
        for attempt in range(_SEND_ATTEMPTS):
            if not entries:
                break
            if attempt:
                self._deps.sleep(0.2 * 2**attempt)  # the queue throttled or failed some entries
            failed_ids = self._deps.queue.send_batch(entries)
            entries = [e for e in entries if e.id in failed_ids]
        if entries:
            raise RuntimeError(
                f"work queue refused {len(entries)} batch message(s) after {_SEND_ATTEMPTS} attempts"
            )
        self._entries, self._entries_bytes = [], 0
