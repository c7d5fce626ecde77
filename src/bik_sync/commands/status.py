"""`bik-sync status KEY_OR_JOB`: how far a job of a deployed (or local) stack is, from its jobs table.

A job id is read directly; a key (``incoming/x.csv``, ``x.csv`` or ``s3://bucket/incoming/x.csv``)
names its latest job (the latest upload: ``UploadOrder``). ``--watch`` refreshes with a progress bar of the
batches done until the job is complete. The table is ``--table``, else ``$JOBS_TABLE_NAME``; boto3
finds the account and the endpoint as usual (``AWS_ENDPOINT_URL`` for the local stack).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from bik_sync.commands.common import EXIT_CANNOT_START, EXIT_INTERRUPTED, EXIT_OK, Parser
from bik_sync.commands.progress import Progress, make_progress
from bik_sync.job_state import JobState

PROG = "bik-sync status"
_JOB_ID = re.compile(r"^(?:[0-9a-f]{24}|sqs-.+)$")
TABLE_ENV = "JOBS_TABLE_NAME"


class JobNotFound(LookupError):
    pass


class JobsTable:
    """Reads job items (never writes): by id, or the latest job of a key (a Scan: fine for a person)."""

    def __init__(self, table: str, client: Any) -> None:
        from boto3.dynamodb.types import TypeDeserializer

        self._table = table
        self._db = client
        self._de = TypeDeserializer()

    def _state(self, item: dict[str, Any]) -> JobState:
        return JobState.from_item({k: self._de.deserialize(v) for k, v in item.items()})

    def by_id(self, job_id: str) -> JobState | None:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": {"S": f"job#{job_id}"}}, ConsistentRead=True
        )
        return self._state(item["Item"]) if "Item" in item else None

    def latest_for_key(self, key: str, bucket: str = "") -> JobState | None:
        latest: JobState | None = None
        names = {"#k": "key"}
        values: dict[str, Any] = {":k": {"S": key}}
        condition = "#k = :k AND attribute_exists(started_at)"
        if bucket:
            names["#b"], values[":b"] = "bucket", {"S": bucket}
            condition += " AND #b = :b"
        pages = self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                state = self._state(item)
                # The upload's order (the S3 event's sequencer, else its time, else the run):
                # uploads within the same second too, as the latest report does.
                if latest is None or state.order.is_after(latest.order):
                    latest = state
                elif state.order == latest.order and state.started_at > latest.started_at:
                    latest = state  # jobs stored before runs were: by when they started
        return latest

    def find(self, what: str, bucket: str = "") -> JobState:
        if what.startswith("s3://"):
            bucket, _, what = what[5:].partition("/")
        elif _JOB_ID.match(what):
            state = self.by_id(what)
            if state is not None:
                return state
        for key in (what, f"incoming/{what}"):
            state = self.latest_for_key(key, bucket)
            if state is not None:
                return state
        raise JobNotFound(f"no job for {what!r} in {self._table}")


def phase(state: JobState) -> str:
    if state.complete:
        return str(state.details.get("status", "complete"))
    return "delivering" if state.ingest_done else "reading"


def fields(state: JobState) -> dict[str, int | str]:
    total = str(state.batches_total) if state.ingest_done else "?"
    return {
        "rows": state.rows if state.ingest_done else "reading",
        "batches": f"{state.batches_done}/{total}",
        "created": state.created,
        "updated": state.updated,
        "rejected": state.rejected_at_ingest + state.rejected_in_worker + state.rejected_by_bik,
        "failed": state.failed,
    }


def describe(state: JobState) -> str:
    counts = "  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in fields(state).items())
    report = f"  report {state.report_key}" if state.complete else ""
    return f"job {state.job_id} {state.key}: {phase(state)}  {counts}{report}"


def watch(
    read: Callable[[], JobState | None],
    *,
    progress: Progress,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobState | None:
    """Refresh ``progress`` from ``read()`` until the job is complete (or ``timeout_s``); the last state."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    state: JobState | None = None
    try:
        while True:
            state = read() or state
            if state is not None:
                total = state.batches_total if state.ingest_done else None
                progress.update(state.batches_done, fields(state), total)
                if state.complete:
                    return state
            if deadline is not None and time.monotonic() >= deadline:
                return state
            sleep(interval_s)
    finally:
        progress.close()


def main(argv: list[str]) -> int:
    parser = Parser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "job", metavar="KEY_OR_JOB", help="an input key (incoming/x.csv), s3:// URL, or job id"
    )
    parser.add_argument("--bucket", metavar="B", help="only jobs of this bucket")
    parser.add_argument(
        "--table", default=os.environ.get(TABLE_ENV, ""), help=f"the jobs table (default: ${TABLE_ENV})"
    )
    parser.add_argument(
        "--watch", action="store_true", help="refresh with a progress bar until the job is complete"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_CANNOT_START
    if not args.table:
        print(f"{PROG}: no jobs table: give --table or set {TABLE_ENV}", file=sys.stderr)
        return EXIT_CANNOT_START
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        table = JobsTable(args.table, boto3.client("dynamodb"))
        state = table.find(args.job, args.bucket or "")
        if args.watch:
            progress = make_progress(f"job {state.key}", state.batches_total or None, unit="batch")
            state = watch(lambda: table.by_id(state.job_id), progress=progress) or state
    except JobNotFound as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except (BotoCoreError, ClientError) as exc:
        print(f"{PROG}: cannot read {args.table}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    print(describe(state))
    return EXIT_OK
