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
import enum
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from bik_sync import layout
from bik_sync.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ser = TypeSerializer()
_de = TypeDeserializer()
JOB_TTL_S = 30 * 24 * 3600
LISTED_BATCH_FILES = 100
# A batch's item is either its delivery progress (with a digest) or, once counted, its count mark.
_NOT_COUNTED = "attribute_not_exists(pk) OR attribute_exists(digest)"
# Progress larger than this is not kept (the retry then sends everything again): items stay < 400 KB.
MAX_PROGRESS_CHARS = 300_000


def job_id_for(bucket: str, key: str, version: str) -> str:
    """A stable id for one version of one object: a redelivered event maps to the same job."""
    return hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()[:24]


class StartOutcome(enum.Enum):
    STARTED = "started"
    DONE = "done"  # ingested already: a redelivered event
    BUSY = "busy"  # another ingest holds a live lease


@dataclass(frozen=True, slots=True)
class BatchCounts:
    created: int = 0
    updated: int = 0
    rejected_invalid: int = 0  # failed our checks in the worker (records sent by other systems)
    rejected_by_bik: int = 0
    failed: int = 0
    rejects_key: str = ""
    failed_key: str = ""


@dataclass(frozen=True, slots=True)
class BatchStatus:
    counted: bool
    # What an earlier receive settled (as saved), and the digest of the records it was saved for.
    digest: str = ""
    progress: str | None = None


@dataclass(frozen=True, slots=True)
class JobState:
    job_id: str
    bucket: str
    key: str
    source: str
    started_at: str
    ingest_done: bool = False
    rows: int = 0
    rejected_at_ingest: int = 0
    batches_total: int = 0
    batches_done: int = 0
    created: int = 0
    updated: int = 0
    rejected_in_worker: int = 0
    rejected_by_bik: int = 0
    failed: int = 0
    rejects_keys: tuple[str, ...] = ()
    failed_keys: tuple[str, ...] = ()
    rejects_files: int = 0
    failed_files: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.ingest_done and self.batches_done >= self.batches_total

    @property
    def report_key(self) -> str:
        return layout.report_key(self.key)

    def report(self, finished_at: str) -> dict[str, Any]:
        invalid = self.rejected_at_ingest + self.rejected_in_worker
        return {
            "job_id": self.job_id,
            "source": self.source,
            "input": f"s3://{self.bucket}/{self.key}" if self.source == "s3" else self.key,
            "status": self.details.get("status", "complete"),
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "rejected": invalid + self.rejected_by_bik,
            "failed": self.failed,
            "rejected_invalid": invalid,
            "rejected_by_bik": self.rejected_by_bik,
            "batches": self.batches_total,
            "report": self.report_key,
            # A huge job lists its first files; the prefixes find them all.
            "rejects_files": sorted(self.rejects_keys),
            "rejects_file_count": self.rejects_files,
            "rejects_prefix": layout.rejects_prefix(self.key),
            "failed_files": sorted(self.failed_keys),
            "failed_file_count": self.failed_files,
            "failed_prefix": layout.failed_prefix(self.key),
            "started_at": self.started_at,
            "finished_at": finished_at,
            **{k: v for k, v in self.details.items() if k != "status"},
        }

    @classmethod
    def from_item(cls, doc: Mapping[str, Any]) -> JobState:
        """A job's state from its item, as plain Python values (attribute names as stored)."""
        return cls(
            job_id=str(doc["pk"]).removeprefix("job#"),
            bucket=str(doc.get("bucket", "")),
            key=str(doc.get("key", "")),
            source=str(doc.get("source", "s3")),
            started_at=str(doc.get("started_at", "")),
            ingest_done=bool(doc.get("ingest_done", False)),
            rows=int(doc.get("rows", 0)),
            rejected_at_ingest=int(doc.get("rejected_at_ingest", 0)),
            batches_total=int(doc.get("batches_total", 0)),
            batches_done=int(doc.get("batches_done", 0)),
            created=int(doc.get("created", 0)),
            updated=int(doc.get("updated", 0)),
            rejected_in_worker=int(doc.get("rejected_in_worker", 0)),
            rejected_by_bik=int(doc.get("rejected_by_bik", 0)),
            failed=int(doc.get("failed", 0)),
            rejects_keys=tuple(sorted(doc.get("rejects_keys", set()))),
            failed_keys=tuple(sorted(doc.get("failed_keys", set()))),
            rejects_files=int(doc.get("rejects_files", 0)) + int(doc.get("ingest_rejects_files", 0)),
            failed_files=int(doc.get("failed_files", 0)),
            details=_plain(doc.get("details", {})),
        )


class JobStore:
    def __init__(
        self, table_name: str, client: DynamoDBClient, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table_name
        self._db = client
        self._clock = clock

    def start(self, job_id: str, *, bucket: str, key: str, source: str, lease_s: float) -> StartOutcome:
        """Open a job for ingest, or re-open one whose ingest died (lease expired, not done).

        Re-opening keeps the counters: batch numbers are deterministic, so the batches the dead
        ingest had already sent stay counted once, and the ones it sends again are not counted twice.
        """
        now = self._clock()
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_serialise({"pk": job_pk(job_id)}),
                UpdateExpression=(
                    "SET #bucket = :bucket, #key = :key, #source = :source, ingest_done = :no,"
                    " started_at = if_not_exists(started_at, :now_iso),"
                    " lease_until = :lease, expiresAt = :expires"
                ),
                ConditionExpression="attribute_not_exists(pk) OR (ingest_done = :no AND lease_until < :now)",
                ExpressionAttributeNames={"#bucket": "bucket", "#key": "key", "#source": "source"},
                ExpressionAttributeValues=_serialise(
                    {
                        ":bucket": bucket,
                        ":key": key,
                        ":source": source,
                        ":no": False,
                        ":now_iso": _iso(now),
                        ":lease": int(now + lease_s),
                        ":expires": int(now + JOB_TTL_S),
                        ":now": int(now),
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
            "started_at": _iso(now),
            "ingest_done": True,
            "rows": rows,
            "rejected_at_ingest": 0,
            "batches_total": 1,
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
        return _iso(self._clock())


def job_pk(job_id: str) -> str:
    return f"job#{job_id}"


def batch_pk(job_id: str, batch: int) -> str:
    return f"job#{job_id}#batch#{batch}"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _serialise(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in doc.items()}


def _state(raw: Mapping[str, Any]) -> JobState:
    return JobState.from_item({k: _de.deserialize(v) for k, v in raw.items()})


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; reports want plain JSON values."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
