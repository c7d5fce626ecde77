"""In-memory fakes of the ports (bik_sync.ports), for unit tests that open no socket.

Each keeps the contract of its adapter, as far as the code relies on it: the job store counts a
batch once and keeps progress only until then, the object store raises ObjectMissing, the queue may
refuse entries, and the BIK fake creates, updates, refuses or fails records as the real API does.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from bik_sync.bik import RetryableFailure
from bik_sync.bik.responses import BatchResult
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
    job_pk,
)
from bik_sync.ports import ObjectMissing, QueueEntry, RangeMissing, StoredObject

if TYPE_CHECKING:
    from bik_sync.ports import Bik, Jobs, ObjectStore, WorkQueue


class InMemoryObjectStore:
    """Buckets as dicts of key -> (bytes, content type)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.uploaded: dict[tuple[str, str], float] = {}
        self._clock = 1_764_547_200.0  # each put a second after the last, as S3's LastModified
        self.opened: list[tuple[str, int]] = []  # each open's key and the byte it read from

    def open(self, bucket: str, key: str, *, version_id: str = "", start: int = 0) -> StoredObject:
        try:
            body, _ = self.objects[(bucket, key)]
        except KeyError:
            raise ObjectMissing(f"s3://{bucket}/{key}") from None
        if start and start >= len(body):  # S3 answers 416 InvalidRange
            raise RangeMissing(f"s3://{bucket}/{key} has no byte {start}")
        self.opened.append((key, start))
        return StoredObject(
            body=io.BytesIO(body[start:]),
            version_id=version_id,
            etag=hashlib.md5(body).hexdigest(),  # noqa: S324 - an ETag
            last_modified=self.uploaded[(bucket, key)],
        )

    def put_file(self, bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
        fileobj.seek(0)
        self.put_bytes(bucket, key, fileobj.read(), content_type)

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = (body, content_type)
        self._clock += 1
        self.uploaded[(bucket, key)] = self._clock

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)
        self.uploaded.pop((bucket, key), None)

    # What a test reads back.
    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(key for b, key in self.objects if b == bucket and key.startswith(prefix))

    def text(self, bucket: str, key: str) -> str:
        return self.objects[(bucket, key)][0].decode("utf-8-sig")

    def json(self, bucket: str, key: str) -> Any:
        return json.loads(self.text(bucket, key))

    def jsonl(self, bucket: str, key: str) -> list[Any]:
        return [json.loads(line) for line in self.text(bucket, key).splitlines() if line]


class InMemoryWorkQueue:
    """Messages sent, in order; ``refuse`` entries the next sends fail (as SQS may throttle)."""

    def __init__(self, refuse: int = 0) -> None:
        self.bodies: list[str] = []
        self.sends = 0
        self.refuse = refuse

    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        assert 1 <= len(entries) <= 10, "SendMessageBatch takes 1 to 10 entries"
        self.sends += 1
        refused = {entry.id for entry in entries[: self.refuse]}
        self.refuse -= len(refused)
        self.bodies.extend(entry.body for entry in entries if entry.id not in refused)
        return refused


class InMemoryJobStore:
    """The job store's items as plain dicts, with the conditions JobStore's DynamoDB writes carry."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_700_000_000.0) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.clock = clock
        self._lock = threading.Lock()  # the worker's messages run side by side

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
        now = self.clock()
        with self._lock:
            item = self.items.get(job_pk(job_id))
            if item is not None and (item["ingest_done"] or item["lease_until"] >= now):
                return StartOutcome.DONE if item["ingest_done"] else StartOutcome.BUSY
            item = self.items.setdefault(job_pk(job_id), {"pk": job_pk(job_id), "started_at": self.now_iso()})
            item.update(bucket=bucket, key=key, source=source, run=run, ingest_done=False)
            for name, value in (order.fields() if order else {}).items():
                item.setdefault(name, value)
            item.update(lease_until=int(now + lease_s), expiresAt=int(now + JOB_TTL_S))
            return StartOutcome.STARTED

    def renew(self, job_id: str, *, lease_s: float) -> None:
        with self._lock:
            self.items.setdefault(job_pk(job_id), {"pk": job_pk(job_id)})["lease_until"] = int(
                self.clock() + lease_s
            )

    def release(self, job_id: str) -> None:
        with self._lock:
            item = self.items.get(job_pk(job_id))
            if item is not None and not item.get("ingest_done"):
                item["lease_until"] = 0

    def checkpoint(self, job_id: str, *, checkpoint: str, rows: int, rejected: int, batches: int) -> None:
        with self._lock:
            item = self.items[job_pk(job_id)]
            assert not item["ingest_done"], "JobStore's condition: the ingest is not done"
            item.update(ingest_checkpoint=checkpoint, rows=rows, rejected_at_ingest=rejected)
            item.update(batches_total=batches, lease_until=0)

    def resume(self, job_id: str, *, lease_s: float) -> StartOutcome:
        now = self.clock()
        with self._lock:
            item = self.items.get(job_pk(job_id))
            if item is None or item["ingest_done"]:
                return StartOutcome.DONE
            if item["lease_until"] >= now:
                return StartOutcome.BUSY
            item["lease_until"] = int(now + lease_s)
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
        with self._lock:
            item = self.items.setdefault(job_pk(job_id), {"pk": job_pk(job_id)})
            item.update(ingest_done=True, rows=rows, rejected_at_ingest=rejected, batches_total=batches)
            item["details"] = details or {}
            keys = set(rejects_keys)
            if keys:
                item["ingest_rejects_files"] = len(keys)
                item["rejects_keys"] = item.get("rejects_keys", set()) | keys
            return JobState.from_item(item)

    def open_message_job(self, job_id: str, *, bucket: str, key: str, rows: int) -> None:
        with self._lock:
            self.items.setdefault(
                job_pk(job_id),
                {
                    "pk": job_pk(job_id),
                    "bucket": bucket,
                    "key": key,
                    "source": "sqs",
                    "started_at": self.now_iso(),
                    "ingest_done": True,
                    "rows": rows,
                    "rejected_at_ingest": 0,
                    "batches_total": 1,
                },
            )

    def batch_status(self, job_id: str, batch: int) -> BatchStatus:
        item = self.items.get(batch_pk(job_id, batch))
        if item is None:
            return BatchStatus(counted=False)
        if "digest" not in item:
            return BatchStatus(counted=True)
        return BatchStatus(counted=False, digest=item["digest"], progress=item.get("progress"))

    def save_progress(self, job_id: str, batch: int, digest: str, progress: str) -> None:
        if len(progress) > MAX_PROGRESS_CHARS:
            return
        with self._lock:
            item = self.items.get(batch_pk(job_id, batch))
            if item is None or "digest" in item:  # not counted yet
                self.items[batch_pk(job_id, batch)] = {"digest": digest, "progress": progress}

    def record_batch(self, job_id: str, batch: int, counts: BatchCounts) -> JobState | None:
        with self._lock:
            mark = self.items.get(batch_pk(job_id, batch))
            if mark is not None and "digest" not in mark:
                return None
            job = self.items[job_pk(job_id)]  # JobStore's condition: the job exists
            self.items[batch_pk(job_id, batch)] = {"expiresAt": int(self.clock() + JOB_TTL_S)}
            for attr, value in (
                ("batches_done", 1),
                ("created", counts.created),
                ("updated", counts.updated),
                ("rejected_in_worker", counts.rejected_invalid),
                ("rejected_by_bik", counts.rejected_by_bik),
                ("failed", counts.failed),
            ):
                job[attr] = job.get(attr, 0) + value
            for attr, key in (("rejects", counts.rejects_key), ("failed", counts.failed_key)):
                if key:
                    job[f"{attr}_files"] = job.get(f"{attr}_files", 0) + 1
                    if batch <= LISTED_BATCH_FILES:
                        job[f"{attr}_keys"] = job.get(f"{attr}_keys", set()) | {key}
            return JobState.from_item(job)

    def add_reasons(self, job_id: str, counts: Mapping[str, int]) -> None:
        with self._lock:
            job = self.items[job_pk(job_id)]
            reasons = job.setdefault("reasons", {})
            for reason, count in counts.items():
                if reason in reasons or len(reasons) < MAX_JOB_REASONS:
                    reasons[reason] = reasons.get(reason, 0) + count
                else:
                    job["reasons_other"] = job.get("reasons_other", 0) + count

    def claim_report(self, job_id: str) -> bool:
        with self._lock:
            job = self.items[job_pk(job_id)]
            claimed = bool(job.get("report_claimed"))
            job["report_claimed"] = True
            return not claimed

    def get(self, job_id: str) -> JobState | None:
        item = self.items.get(job_pk(job_id))
        return JobState.from_item(item) if item is not None else None

    def now_iso(self) -> str:
        return iso_time(self.clock())


def _identity(record: Mapping[str, Any]) -> str:
    return str(record.get("phoneNumber") or record.get("email") or record.get("partnerCustomerId"))


class FakeBik:
    """BIK's bulk upsert in memory: records are created, or updated when their identity is known.

    ``refuse`` maps an identity to BIK's reason for refusing that record in a 200; ``unavailable``
    fails the request (retryably, as BIK's 503 after every retry) while it holds a record for which
    the predicate is true and ``outages`` are left.
    """

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.requests: list[list[dict[str, Any]]] = []
        self.refuse: dict[str, str] = {}
        self.unavailable: Callable[[Mapping[str, Any]], bool] = lambda record: False
        self.outages = 0
        self._lock = threading.Lock()

    def upsert(
        self, records: Sequence[Mapping[str, Any]], *, deadline: float, body: bytes | None = None
    ) -> BatchResult:
        with self._lock:
            self.requests.append([dict(record) for record in records])
            if self.outages and any(self.unavailable(record) for record in records):
                self.outages -= 1
                raise RetryableFailure("gave up after 1 attempts: BIK answered 503", attempts=1, retries=0)
            created = updated = 0
            rejected: list[tuple[int, str]] = []
            for i, record in enumerate(records):
                identity = _identity(record)
                if identity in self.refuse:
                    rejected.append((i, self.refuse[identity]))
                    continue
                if identity in self.users:
                    updated += 1
                else:
                    created += 1
                self.users.setdefault(identity, {}).update(record)
            return BatchResult(created, updated, rejected, attempts=1, retries=0)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every record sent, in the order sent."""
        return [record for request in self.requests for record in request]


if TYPE_CHECKING:  # each fake stands for its port: mypy checks that it fits
    _objects: ObjectStore = InMemoryObjectStore()
    _queue: WorkQueue = InMemoryWorkQueue()
    _jobs: Jobs = InMemoryJobStore()
    _bik: Bik = FakeBik()
