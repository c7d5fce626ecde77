"""Jobs and their counters in DynamoDB.

One input (an S3 object version, or one SQS message from another system) is one job. Its item
counts rows, batches sent and done, created, updated, rejected and failed. Each batch is counted
once, however often SQS delivers it: a marker item per batch and the counter update are written in
one transaction. Whoever sees the last piece arrive (ingest finishing, or the last batch) writes
the report; a retry after a failed write writes it again, so it is never missing (and may be
written twice, with the same counts).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

# The state types live in job_state (shared with the in-memory fake); imported from here as before.
from bik_sync.job_state import (
    JOB_TTL_S,
    LISTED_BATCH_FILES,
    MAX_JOB_REASONS,
    MAX_PROGRESS_CHARS,
    BatchCounts,
    BatchStatus,
    JobState,
    StartOutcome,
    UploadOrder,
    batch_pk,
    iso_time,
    job_id_for,
    job_pk,
)
from bik_sync.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ser = TypeSerializer()
_de = TypeDeserializer()
# A batch's item is either its delivery progress (with a digest) or, once counted, its count mark.
_NOT_COUNTED = "attribute_not_exists(pk) OR attribute_exists(digest)"

__all__ = [
    "JOB_TTL_S",
    "LISTED_BATCH_FILES",
    "MAX_PROGRESS_CHARS",
    "BatchCounts",
    "BatchStatus",
    "JobState",
    "JobStore",
    "StartOutcome",
    "batch_pk",
    "job_id_for",
    "job_pk",
]


class JobStore:
    def __init__(
        self, table_name: str, client: DynamoDBClient, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table_name
        self._db = client
        self._clock = clock

    def start(
        self,
        job_id: str,
        *,
        bucket: str,
        key: str,
        source: str,
        lease_s: float,
        run: str = "",
        order: UploadOrder | None = None,
    ) -> StartOutcome:
        """Open a job for ingest, or re-open one whose ingest died (lease expired, not done).

        Re-opening keeps the counters: batch numbers are deterministic, so the batches the dead
        ingest had already sent stay counted once, and the ones it sends again are not counted twice.
        The upload's order (sequencer, time) is the first start's.
        """
        now = self._clock()
        order_fields = order.fields() if order else {}
        keep_order = "".join(f", {name} = if_not_exists({name}, :{name})" for name in order_fields)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_serialise({"pk": job_pk(job_id)}),
                UpdateExpression=(
                    "SET #bucket = :bucket, #key = :key, #source = :source, #run = :run, ingest_done = :no,"
                    " reasons = if_not_exists(reasons, :no_reasons),"
                    " started_at = if_not_exists(started_at, :now_iso),"
                    f" lease_until = :lease, expiresAt = :expires{keep_order}"
                ),
                ConditionExpression="attribute_not_exists(pk) OR (ingest_done = :no AND lease_until < :now)",
                ExpressionAttributeNames={
                    "#bucket": "bucket",
                    "#key": "key",
                    "#source": "source",
                    "#run": "run",
                },
                ExpressionAttributeValues=_serialise(
                    {
                        ":bucket": bucket,
                        ":key": key,
                        ":source": source,
                        ":run": run,
                        ":no_reasons": {},
                        ":no": False,
                        ":now_iso": iso_time(now),
                        ":lease": int(now + lease_s),
                        ":expires": int(now + JOB_TTL_S),
                        ":now": int(now),
                        **{f":{name}": value for name, value in order_fields.items()},
                    }
                ),
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            state = self.get(job_id)
            return StartOutcome.DONE if state is not None and state.ingest_done else StartOutcome.BUSY
        return StartOutcome.STARTED

    def renew(self, job_id: str, *, lease_s: float) -> None:
        """Extend the running ingest's lease; a dead ingest's lease soon expires and a retry takes over."""
        self._db.update_item(
            TableName=self._table,
            Key=_serialise({"pk": job_pk(job_id)}),
            UpdateExpression="SET lease_until = :lease",
            ExpressionAttributeValues=_serialise({":lease": int(self._clock() + lease_s)}),
        )

    def batch_status(self, job_id: str, batch: int) -> BatchStatus:
        """Whether this batch is counted and, if not, the delivery progress its last receive saved."""
        item = self._db.get_item(
            TableName=self._table, Key=_serialise({"pk": batch_pk(job_id, batch)}), ConsistentRead=True
        ).get("Item")
        if item is None:
            return BatchStatus(counted=False)
        doc = {k: _de.deserialize(v) for k, v in item.items()}
        # An item without progress is a count mark (also one written before marks held progress).
        if "digest" not in doc:
            return BatchStatus(counted=True)
        return BatchStatus(counted=False, digest=str(doc["digest"]), progress=doc.get("progress"))

    def save_progress(self, job_id: str, batch: int, digest: str, progress: str) -> None:
        """Keep what this receive settled, so that the next receive of the batch sends only the rest.

        Two deliveries of one message at once may overwrite each other's progress: the loser's
        records are then sent again, which BIK takes as updates. The batch is still counted once.
        """
        if len(progress) > MAX_PROGRESS_CHARS:
            logger.warning("delivery progress too large to keep; the retry sends every record")
            return
        # Once the batch is counted its progress is of no use: the condition keeps the item small.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key=_serialise({"pk": batch_pk(job_id, batch)}),
                UpdateExpression="SET digest = :digest, progress = :progress, expiresAt = :expires",
                ConditionExpression=_NOT_COUNTED,
                ExpressionAttributeValues=_serialise(
                    {
                        ":digest": digest,
                        ":progress": progress,
                        ":expires": int(self._clock() + JOB_TTL_S),
                    }
                ),
            )

    def release(self, job_id: str) -> None:
        """Give up an ingest lease early (the ingest failed and its event will be retried)."""
        # The job may have finished after all: then there is nothing to release.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key=_serialise({"pk": job_pk(job_id)}),
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="ingest_done = :no",
                ExpressionAttributeValues=_serialise({":zero": 0, ":no": False}),
            )

    def checkpoint(self, job_id: str, *, checkpoint: str, rows: int, rejected: int, batches: int) -> None:
        """Where ingest stopped, with the totals so far (SET: a part read again writes the same), and
        the lease given up so that the continuation may take it at once."""
        self._db.update_item(
            TableName=self._table,
            Key=_serialise({"pk": job_pk(job_id)}),
            UpdateExpression=(
                "SET ingest_checkpoint = :cp, #rows = :rows, rejected_at_ingest = :rej,"
                " batches_total = :batches, lease_until = :zero"
            ),
            ConditionExpression="ingest_done = :no",
            ExpressionAttributeNames={"#rows": "rows"},
            ExpressionAttributeValues=_serialise(
                {
                    ":cp": checkpoint,
                    ":rows": rows,
                    ":rej": rejected,
                    ":batches": batches,
                    ":zero": 0,
                    ":no": False,
                }
            ),
        )

    def resume(self, job_id: str, *, lease_s: float) -> StartOutcome:
        """Take the lease of a job whose ingest is not done and whose lease is free (never creates one)."""
        now = self._clock()
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_serialise({"pk": job_pk(job_id)}),
                UpdateExpression="SET lease_until = :lease",
                ConditionExpression="attribute_exists(pk) AND ingest_done = :no AND lease_until < :now",
                ExpressionAttributeValues=_serialise(
                    {":lease": int(now + lease_s), ":no": False, ":now": int(now)}
                ),
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            state = self.get(job_id)
            return StartOutcome.BUSY if state is not None and not state.ingest_done else StartOutcome.DONE
        return StartOutcome.STARTED

    def finish_ingest(
        self,
        job_id: str,
        *,
        rows: int,
        rejected: int,
        batches: int,
        rejects_keys: Iterable[str] = (),
        details: dict[str, Any] | None = None,
    ) -> JobState:
        values: dict[str, Any] = {
            ":done": True,
            ":rows": rows,
            ":rej": rejected,
            ":batches": batches,
            ":details": details or {},
        }
        update = (
            "SET ingest_done = :done, #rows = :rows, rejected_at_ingest = :rej,"
            " batches_total = :batches, details = :details"
        )
        keys = set(rejects_keys)
        if keys:
            # SET, not ADD: an ingest run again after a crash writes the same file again.
            update += ", ingest_rejects_files = :nk ADD rejects_keys :rk"
            values[":rk"] = keys
            values[":nk"] = len(keys)
        response = self._db.update_item(
            TableName=self._table,
            Key=_serialise({"pk": job_pk(job_id)}),
            UpdateExpression=update,
            ExpressionAttributeNames={"#rows": "rows"},
            ExpressionAttributeValues=_serialise(values),
            ReturnValues="ALL_NEW",
        )
        return _state(response["Attributes"])

    def open_message_job(self, job_id: str, *, bucket: str, key: str, rows: int) -> None:
        """A message from another system is a job of one batch, complete once that batch is counted."""
        now = self._clock()
        item = {
            "pk": job_pk(job_id),
            "bucket": bucket,
            "key": key,
            "source": "sqs",
            "started_at": iso_time(now),
            "ingest_done": True,
            "rows": rows,
            "rejected_at_ingest": 0,
            "batches_total": 1,
            "reasons": {},
            "expiresAt": int(now + JOB_TTL_S),
        }
        # A redelivered message finds its job already open.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.put_item(
                TableName=self._table, Item=_serialise(item), ConditionExpression="attribute_not_exists(pk)"
            )

    def record_batch(self, job_id: str, batch: int, counts: BatchCounts) -> JobState | None:
        """Count one batch once. None when this batch had already been counted."""
        now = self._clock()
        values: dict[str, Any] = {
            ":one": 1,
            ":c": counts.created,
            ":u": counts.updated,
            ":ri": counts.rejected_invalid,
            ":rb": counts.rejected_by_bik,
            ":f": counts.failed,
        }
        update = (
            "ADD batches_done :one, created :c, updated :u,"
            " rejected_in_worker :ri, rejected_by_bik :rb, failed :f"
        )
        for attr, key in (("rejects", counts.rejects_key), ("failed", counts.failed_key)):
            if not key:
                continue
            update += f", {attr}_files :one"
            # The job item lists the first files only, so that it stays far below DynamoDB's 400 KB.
            if batch <= LISTED_BATCH_FILES:
                update += f", {attr}_keys :{attr}"
                values[f":{attr}"] = {key}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        # The batch's item: its delivery progress (if any) gives way to the mark.
                        "Update": {
                            "TableName": self._table,
                            "Key": _serialise({"pk": batch_pk(job_id, batch)}),
                            "UpdateExpression": ("SET expiresAt = :expires REMOVE progress, digest"),
                            "ConditionExpression": _NOT_COUNTED,
                            "ExpressionAttributeValues": _serialise({":expires": int(now + JOB_TTL_S)}),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _serialise({"pk": job_pk(job_id)}),
                            "UpdateExpression": update,
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeValues": _serialise(values),
                        }
                    },
                ]
            )
        except self._db.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return None
            raise
        return self.get(job_id)

    def add_reasons(self, job_id: str, counts: Mapping[str, int]) -> None:
        """Count why rows were rejected or failed, for the report's summary (best effort: the
        counters above are the ledger). At most MAX_JOB_REASONS distinct reasons are kept on the
        item; the rest are counted together, so that it stays far below DynamoDB's 400 KB."""
        key = _serialise({"pk": job_pk(job_id)})
        for reason, count in counts.items():
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET reasons.#r = if_not_exists(reasons.#r, :zero) + :n",
                    ConditionExpression=(
                        "attribute_exists(reasons) AND (attribute_exists(reasons.#r) OR size(reasons) < :cap)"
                    ),
                    ExpressionAttributeNames={"#r": reason},
                    ExpressionAttributeValues=_serialise({":zero": 0, ":n": count, ":cap": MAX_JOB_REASONS}),
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in ("ConditionalCheckFailedException", "ValidationException"):
                    raise
                # Full, or an item from before reasons were kept: count it with the others.
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="ADD reasons_other :n",
                    ExpressionAttributeValues=_serialise({":n": count}),
                )

    def claim_report(self, job_id: str) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_serialise({"pk": job_pk(job_id)}),
                UpdateExpression="SET report_claimed = :yes",
                ConditionExpression="attribute_not_exists(report_claimed)",
                ExpressionAttributeValues=_serialise({":yes": True}),
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, job_id: str) -> JobState | None:
        item = self._db.get_item(
            TableName=self._table, Key=_serialise({"pk": job_pk(job_id)}), ConsistentRead=True
        )
        return _state(item["Item"]) if "Item" in item else None

    def now_iso(self) -> str:
        return iso_time(self._clock())


def _serialise(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in doc.items()}


def _state(raw: Mapping[str, Any]) -> JobState:
    return JobState.from_item({k: _de.deserialize(v) for k, v in raw.items()})
