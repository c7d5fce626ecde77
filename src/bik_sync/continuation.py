"""IngestFunction's events: S3 objects to ingest, and continuations of files read in parts.

A continuation message (:mod:`bik_sync.checkpoint`) arrives from ``IngestContinueQueue`` as an SQS
event record. It is honoured only when signed with the job signing key, and only by the invocation
that takes the job's lease: the job then carries on from the checkpoint its item holds, on the
object version it started with. If that version is gone, or the object changed under an unversioned
bucket (another ETag), the job ends ``incomplete`` with the reason instead of mixing two files.
"""

from __future__ import annotations

import functools
from contextlib import closing
from typing import Any

from bik_sync.checkpoint import Checkpoint, Continuation, ForgedContinuation, is_continuation, parse_message
from bik_sync.clock import Deadline
from bik_sync.ingest import IngestDeps, IngestResult, ingest_event, run_job, stop_job
from bik_sync.jobs import StartOutcome, job_id_for
from bik_sync.messages import JobMeta
from bik_sync.observability import logger
from bik_sync.s3_events import S3ObjectRef
from bik_sync.storage import InputChanged, InputMissing, open_input, reopen_input


def ingest_or_continue(
    event: dict[str, Any], deps: IngestDeps, deadline: Deadline | None = None
) -> list[IngestResult]:
    """Each continuation record carries its job on; everything else is an S3 event (ingest_event)."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not any(is_continuation(r) for r in records):
        return ingest_event(event, deps, deadline)
    results = [continue_job(r["body"], deps, deadline) for r in records if is_continuation(r)]
    others = [r for r in records if not is_continuation(r)]
    return results + (ingest_event({"Records": others}, deps, deadline) if others else [])


def continue_job(body: str, deps: IngestDeps, deadline: Deadline | None = None) -> IngestResult:
    """Carry a job on from its checkpoint, if this message is ingest's and the job is free to take."""
    try:
        request = parse_message(body, deps.signing_key())
    except ForgedContinuation as exc:
        # Acknowledged, not retried: it can never become valid.
        logger.error("continuation message refused", reason=str(exc))
        return IngestResult(job_id="", key="", status="refused")
    logger.append_keys(job_id=request.job_id)
    logger.set_correlation_id(request.job_id)
    started = deps.jobs.resume(request.job_id, lease_s=deps.lease_s)
    if started is not StartOutcome.STARTED:
        # Done, or another invocation holds the lease: that one carries the job on (and its own
        # trigger comes back should it die), so this message has nothing left to do.
        logger.info("continuation not needed", key=request.key, part=request.part, outcome=started.value)
        return IngestResult(job_id=request.job_id, key=request.key, status="duplicate")
    try:
        return _carry_on(request, deps, deadline or Deadline.unlimited())
    except BaseException:
        deps.jobs.release(request.job_id)  # the message comes back, and may take the job at once
        raise


def _carry_on(request: Continuation, deps: IngestDeps, deadline: Deadline) -> IngestResult:
    state = deps.jobs.get(request.job_id)
    resumed = Checkpoint.from_json(state.checkpoint if state else "")
    ref = S3ObjectRef(bucket=request.bucket, key=request.key, version_id=request.version_id)
    changed = (
        "the input changed (another version, ETag or upload time) before it was read to the end; "
        "upload it again to read it as a job of its own"
    )
    try:
        # From the checkpoint's byte offset where it has one (a ranged GET), else from the start.
        source = open_input(deps.objects, ref, start=resumed.offset)
    except InputMissing:
        return _abandon(request, resumed, deps, "the input was deleted before it was read to the end")
    except InputChanged:
        return _abandon(request, resumed, deps, changed)
    # A ranged GET answers with the whole object's version and ETag: the same check as a full one.
    # A job an older release started is named by the legacy identity (no upload time in it).
    names = {job_id_for(ref.bucket, ref.key, name) for name in (source.identity, source.legacy_identity)}
    if request.job_id not in names:
        source.body.close()
        return _abandon(request, resumed, deps, changed)
    with closing(source.body):
        job = JobMeta(
            job_id=request.job_id, bucket=ref.bucket, key=ref.key, batch=0, rows=(), run=request.run
        )
        # The object is read a second time only by the part whose pass 1 reaches the end.
        reopen = functools.partial(reopen_input, deps.objects, ref, source)
        return run_job(job, ref, source.body, deps, deadline, reopen, resumed)


def _abandon(request: Continuation, resumed: Checkpoint, deps: IngestDeps, reason: str) -> IngestResult:
    """End the job with what the earlier parts read, and why it stopped there."""
    logger.warning("continuation abandoned", key=request.key, part=request.part, reason=reason)
    job = JobMeta(
        job_id=request.job_id, bucket=request.bucket, key=request.key, batch=0, rows=(), run=request.run
    )
    return stop_job(job, deps, resumed, reason)
