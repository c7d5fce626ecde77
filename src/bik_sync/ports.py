"""The ports: what ingest, the worker and reporting need from the world, as small protocols.

Each has an adapter over a real client (taken as an argument, never built here) and an in-memory
fake for the unit tests (``tests/fakes.py``):

============  ===========================================  ==================================
Port          Adapter                                      Fake
============  ===========================================  ==================================
ObjectStore   :class:`bik_sync.storage.S3ObjectStore`      ``InMemoryObjectStore``
WorkQueue     :class:`bik_sync.work_queue.SqsWorkQueue`    ``InMemoryWorkQueue``
Jobs          :class:`bik_sync.jobs.JobStore` (DynamoDB)   ``InMemoryJobStore``
Bik           :class:`bik_sync.bik.client.BikClient`       ``FakeBik``
============  ===========================================  ==================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from bik_sync.job_state import BatchCounts, BatchStatus, JobState, StartOutcome, UploadOrder

if TYPE_CHECKING:  # the worker's: ingest, which never calls BIK, does not import the client's side
    from bik_sync.bik.responses import BatchResult

#: The version id S3 serves for an object written while the bucket's versioning is suspended.
NULL_VERSION = "null"


class ObjectMissing(LookupError):
    """No object under that bucket and key (or version)."""


class RangeMissing(ObjectMissing):
    """The object holds no byte where the range starts: it is shorter than the one read before."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object's body as a stream (not yet read), with the version and ETag the store served."""

    body: BinaryIO
    version_id: str
    etag: str
    last_modified: float = 0.0  # when it was uploaded (epoch seconds), as the store says

    @property
    def identity(self) -> str:
        """What names this upload: its version where the bucket is versioned; else its ETag and its
        upload time (LastModified in whole seconds, as S3 serves it on a GET). A redelivered event of
        one upload opens the same object, so it names the same job; the same bytes uploaded again
        (a daily export that did not change) are another upload, and another job. Two uploads of
        identical bytes within one second cannot be told apart: they are one job. ``"null"`` is the
        version S3 gives objects of a bucket whose versioning is suspended: every upload has it.
        """
        if self.version_id and self.version_id != NULL_VERSION:
            return self.version_id
        return f"{self.etag}@{int(self.last_modified)}"

    @property
    def legacy_identity(self) -> str:
        """The identity jobs were named by before the upload time was part of it (version, else
        ETag): a job started by an older release is still recognised when it carries on."""
        return self.version_id or self.etag


class ObjectStore(Protocol):
    """Reading inputs and writing outputs (S3)."""

    def open(self, bucket: str, key: str, *, version_id: str = "", start: int = 0) -> StoredObject:
        """The object as a stream, from byte ``start`` on (a ranged GET: the version and ETag are
        still the whole object's); raises :class:`ObjectMissing` when it is not there, and
        :class:`RangeMissing` when it has no byte ``start``."""
        ...

    def put_file(self, bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
        """Upload a (spooled) file from its start."""
        ...

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object (nothing happens when it is not there)."""
        ...


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One message of a batch send: its id within the batch and its body."""

    id: str
    body: str


class WorkQueue(Protocol):
    """The work queue ingest sends batches to (SQS SendMessageBatch: at most 10 entries)."""

    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        """Send the entries; returns the ids of those the queue did not take (to be sent again)."""
        ...


class Jobs(Protocol):
    """The job store: one item per job with its counters, one per batch (progress, then a count mark)."""

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
        """Open a job (``order``: where its upload stands among the key's, kept from the first start)."""
        ...

    def renew(self, job_id: str, *, lease_s: float) -> None: ...

    def release(self, job_id: str) -> None: ...

    def checkpoint(self, job_id: str, *, checkpoint: str, rows: int, rejected: int, batches: int) -> None:
        """Store where ingest stopped (and the totals so far), giving up the lease."""
        ...

    def resume(self, job_id: str, *, lease_s: float) -> StartOutcome:
        """Take the lease of a job whose ingest is not done to carry on from its checkpoint
        (DONE also when there is no such job)."""
        ...

    def finish_ingest(
        self,
        job_id: str,
        *,
        rows: int,
        rejected: int,
        batches: int,
        rejects_keys: Iterable[str] = (),
        details: dict[str, Any] | None = None,
    ) -> JobState: ...

    def open_message_job(self, job_id: str, *, bucket: str, key: str, rows: int) -> None: ...

    def batch_status(self, job_id: str, batch: int) -> BatchStatus: ...

    def save_progress(self, job_id: str, batch: int, digest: str, progress: str) -> None: ...

    def record_batch(self, job_id: str, batch: int, counts: BatchCounts) -> JobState | None:
        """Count one batch once; None when it had already been counted."""
        ...

    def add_reasons(self, job_id: str, counts: Mapping[str, int]) -> None:
        """Count why rows were rejected or failed (a summary for the report, best effort)."""
        ...

    def claim_report(self, job_id: str) -> bool: ...

    def get(self, job_id: str) -> JobState | None: ...

    def now_iso(self) -> str: ...


class Bik(Protocol):
    """BIK's bulk upsert, as :meth:`bik_sync.bik.client.BikClient.upsert` offers it.

    Raises the :class:`bik_sync.bik.BikError` family when BIK does not take the batch;
    ``deadline`` is a value of the monotonic clock.
    """

    def upsert(
        self, records: Sequence[Mapping[str, Any]], *, deadline: float, body: bytes | None = None
    ) -> BatchResult: ...
