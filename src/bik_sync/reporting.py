"""Write a job's report once all of it is accounted for."""

from __future__ import annotations

import json
from typing import Any

from bik_sync import layout
from bik_sync.job_state import UploadOrder
from bik_sync.jobs import JobState
from bik_sync.observability import logger
from bik_sync.outcome import summarise_reasons
from bik_sync.ports import Jobs, ObjectMissing, ObjectStore
from bik_sync.storage import put_json


def write_report_if_complete(state: JobState | None, jobs: Jobs, objects: ObjectStore) -> str | None:
    """Put the report when the job is complete; returns its key, or None when work is still out.

    Ingest finishing and the last batch may both see the job complete: putting the same report
    twice is harmless, and the conditional claim makes the "job complete" log line happen once.
    """
    if state is None or not state.complete:
        return None
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
