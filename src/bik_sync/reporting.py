"""Write a job's report once all of it is accounted for."""

from __future__ import annotations

import json
from typing import Any

from bik_sync import layout
from bik_sync.job_state import UploadOrder, iso_millis, job_id_for
from bik_sync.jobs import JobState
from bik_sync.observability import logger
from bik_sync.outcome import summarise_reasons
from bik_sync.ports import Jobs, ObjectMissing, ObjectStore
from bik_sync.s3_events import S3ObjectRef
from bik_sync.storage import put_json


def write_report_if_complete(state: JobState | None, jobs: Jobs, objects: ObjectStore) -> str | None:
    """Put the report when the job is complete; returns its key, or None when work is still out.

    Ingest finishing and the last batch may both see the job complete: putting the same report
    twice is harmless, and the conditional claim makes the "job complete" log line happen once. A
    job whose report was claimed (written, then claimed) keeps it as it is: an event or a batch
    delivered again later would only rewrite its ``finished_at`` with its own time.
    """
    if state is None or not state.complete:
        return None
    if state.report_claimed:
        return state.report_key
    report = state.report(finished_at=jobs.now_iso())
    put_json(objects, state.bucket, state.report_key, report)
    if state.run:
        _put_latest(objects, state, report)
    if jobs.claim_report(state.job_id):
        logger.info(
            "job complete",
            job_id=state.job_id,
            report_key=state.report_key,
            rows=report["rows"],
            records_created=report["created"],
            records_updated=report["updated"],
            records_rejected=report["rejected"],
            records_failed=report["failed"],
        )
    return state.report_key


def _put_latest(objects: ObjectStore, state: JobState, report: dict[str, Any]) -> None:
    """The latest job's report also stands at ``reports/<input key>.json``, unless a newer job of the
    same input has put its own there already (an older job can finish last)."""
    key = layout.latest_report_key(state.key)
    try:
        with objects.open(state.bucket, key).body as body:
            current = json.loads(body.read(1 << 20))
    except (ObjectMissing, ValueError):
        current = {}
    # By the upload's order (the S3 event's sequencer, else its time), not the run alone: two
    # uploads within one second have runs that differ only by their random ids.
    if isinstance(current, dict) and UploadOrder.of_report(current).is_after(state.order):
        return
    put_json(objects, state.bucket, key, report)


REPLACED_REASON = (
    "this upload was replaced by a later upload of the same key before it could be read (the bucket "
    "keeps no versions): none of it was read or sent; the later upload is a job of its own. Upload "
    "this file again if it should go in"
)


def report_replaced(ref: S3ObjectRef, objects: ObjectStore, jobs: Jobs) -> str | None:
    """Put the report of the upload ``ref`` announces, gone before ingest could read it (a later
    upload of its key replaced it, in a bucket without versions); returns its key.

    Its name is of its own (the event's ETag and time), so it stands beside every job's report and
    never replaces one, nor the key's latest report; a redelivered event puts the same report again.
    An event delivered again after its upload was read (and then replaced) is no such upload: its
    job exists, named by the ETag and the upload's second (a PUT's LastModified is its event's
    second or one or two before), and nothing is put. A multipart upload's LastModified is when it
    began, so its job cannot be looked up so: nothing is put for it either (as before).
    """
    assert ref.event_time is not None, "an upload is named by its event's time"
    if "-" in ref.etag:  # a multipart upload's ETag: "<digest>-<parts>"
        return None
    second = int(ref.event_time)
    # And a job of an older release, named by the ETag alone (StoredObject.legacy_identity).
    names = [f"{ref.etag}@{at}" for at in range(second - 2, second + 1)] + [ref.etag]
    if any(jobs.get(job_id_for(ref.bucket, ref.key, name)) for name in names):
        return None
    job_id = job_id_for(ref.bucket, ref.key, f"replaced {ref.etag}@{iso_millis(ref.event_time)}")
    run = layout.job_run(ref.event_time, job_id)
    report = replaced_report(ref, job_id=job_id, run=run)
    put_json(objects, ref.bucket, report["report"], report)
    logger.warning("upload replaced before it could be read", job_id=job_id, report_key=report["report"])
    return str(report["report"])


def replaced_report(ref: S3ObjectRef, *, job_id: str, run: str) -> dict[str, Any]:
    """The report of an upload gone before ingest could read it: nothing of it was counted."""
    uploaded_at = iso_millis(ref.event_time) if ref.event_time is not None else ""
    return {
        "job_id": job_id,
        "source": "s3",
        "input": ref.uri,
        "run": run,
        "status": "replaced",
        "error": REPLACED_REASON,
        "reasons": {},
        "rows": 0,
        "created": 0,
        "updated": 0,
        "rejected": 0,
        "failed": 0,
        "duplicates": 0,
        "rejected_invalid": 0,
        "rejected_by_bik": 0,
        "rejects_files": [],
        "failed_files": [],
        "report": layout.report_key(ref.key, run),
        "uploaded_at": uploaded_at,
        "sequencer": ref.sequencer,
    }


def malformed_report(message_id: str, reason: str, *, rejects_key: str, report_key: str) -> dict[str, Any]:
    """The report of a message that cannot be read as records at all: no row of it was counted."""
    return {
        "job_id": f"sqs-{message_id}",
        "source": "sqs",
        "input": layout.message_job_key(message_id),
        "status": "unreadable",
        "error": reason,
        "reasons": summarise_reasons({reason: 1}),
        "rows": 0,
        "created": 0,
        "updated": 0,
        "rejected": 0,
        "failed": 0,
        "rejected_invalid": 0,
        "rejected_by_bik": 0,
        "rejects_files": [rejects_key],
        "failed_files": [],
        "report": report_key,
    }
