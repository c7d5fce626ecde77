"""Where an ingest stopped, and the signed message that has a fresh invocation carry on from there.

A file too large for one invocation is read in parts. When its time runs out, ingest sends what it
has, writes its rejects as a part file, stores a :class:`Checkpoint` on the job's item (the rows
read, the rows rejected, the batches sent, the rejects files so far; the same write gives up the
lease) and sends a continuation message to ``INGEST_CONTINUE_QUEUE_URL``. For a plain CSV or JSON-lines
file the checkpoint also holds where the next row starts in the object's bytes, and what the reader
decided from the file's start (``records.ResumePoint``): the next invocation reads on from there
with a ranged GET. Other files (compressed, JSON documents, workbooks), or a point the reader cannot
vouch for, are read again from the start, the rows done skipped. The message only names the
job and the object version; the checkpoint it continues from is the one the job's item holds, so a
message delivered twice, or one older than the job's latest checkpoint, can never read a row twice.

Messages are signed with the job signing key (:mod:`bik_sync.signing`) over a text of their own, so
no other system can forge one, and no work message's signature can be replayed as one.
"""

from __future__ import annotations

import collections
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bik_sync import signing
from bik_sync.merge_state import MergeState
from bik_sync.observability import logger
from bik_sync.ports import Jobs, QueueEntry, WorkQueue
from bik_sync.records import ResumePoint

CONTINUE_FIELD = "continue"
# What the signature covers besides the fields: never a records digest, so never a work message's.
_SIGNED_AS = "ingest-continuation"
_SEND_ATTEMPTS = 3
# Rows skipped between two renewals of the lease while a continuation reads past what is done.
_SKIP_STEP = 1000
# The largest resume point kept on the job's item (a header of thousands of columns is larger: the
# next part then skips rows instead). DynamoDB's item holds 400 KB in all.
MAX_RESUME_CHARS = 32_000

_T = TypeVar("_T")


class ForgedContinuation(ValueError):
    """The message is not a continuation ingest sent (unsigned, badly signed or malformed)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far a job's ingest got: everything a fresh invocation needs to carry on exactly there."""

    part: int = 0  # invocations that have read part of the file (0: none yet)
    rows: int = 0  # rows read (valid or not): the next invocation skips this many, unless it has `resume`
    rejected: int = 0  # rows rejected at ingest, in the part files so far
    batches: int = 0  # batches sent: the next one is batches + 1
    next_row: int = 0  # the file's own number of the next row to read (for the report and logs)
    rejects_keys: tuple[str, ...] = field(default=())
    duplicates: int = 0  # rows merged into an earlier row of the same person
    # Rows of one person carried to the next part (merge_state.py).
    merge: MergeState = field(default_factory=MergeState)
    # Where the next row starts in the object (plain CSV, JSON lines): read on from there, not skipped.
    resume: ResumePoint | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "part": self.part,
                "rows": self.rows,
                "rejected": self.rejected,
                "batches": self.batches,
                "next_row": self.next_row,
                "rejects_keys": list(self.rejects_keys),
                "duplicates": self.duplicates,
                "merge": self.merge.to_doc(),
                "resume": self.resume.to_dict() if self.resume is not None else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """The stored checkpoint; an empty text is the start of the file."""
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(
            part=int(doc["part"]),
            rows=int(doc["rows"]),
            rejected=int(doc["rejected"]),
            batches=int(doc["batches"]),
            next_row=int(doc["next_row"]),
            rejects_keys=tuple(str(k) for k in doc["rejects_keys"]),
            duplicates=int(doc.get("duplicates", 0)),
            merge=MergeState.from_doc(doc.get("merge") or {}),
            resume=ResumePoint.from_dict(doc["resume"]) if doc.get("resume") else None,
        )

    @property
    def offset(self) -> int:
        """The object's byte the next invocation reads from (0: the start, skipping ``rows``)."""
        return self.resume.offset if self.resume is not None else 0


@dataclass(frozen=True, slots=True)
class Continuation:
    """A continuation message: which job, of which object version, carries on after which part."""

    job_id: str
    bucket: str
    key: str
    version_id: str
    run: str
    part: int

    def fields(self) -> dict[str, Any]:
        return {
            "job": self.job_id,
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version_id,
            "run": self.run,
            "part": self.part,
        }


def build_message(request: Continuation, key: bytes) -> str:
    fields = request.fields()
    sig = signing.signature(key, fields, _SIGNED_AS)
    return json.dumps({CONTINUE_FIELD: fields, "sig": sig}, separators=(",", ":"))


def parse_message(body: str, key: bytes) -> Continuation:
    """The continuation a message asks for; raises ForgedContinuation unless ingest signed it."""
    try:
        doc = json.loads(body)
        fields = doc[CONTINUE_FIELD]
        request = Continuation(
            job_id=str(fields["job"]),
            bucket=str(fields["bucket"]),
            key=str(fields["key"]),
            version_id=str(fields["version"]),
            run=str(fields["run"]),
            part=int(fields["part"]),
        )
        sig = str(doc.get("sig", ""))
    except (ValueError, KeyError, TypeError):
        raise ForgedContinuation("the continuation message is malformed") from None
    if not isinstance(fields, dict) or not signing.verify(key, fields, sig, _SIGNED_AS):
        raise ForgedContinuation("the continuation message is not signed with the job signing key")
    return request


def is_continuation(record: Any) -> bool:
    """Whether an SQS event record carries a continuation message (and not an S3 notification)."""
    if not isinstance(record, dict) or record.get("eventSource") != "aws:sqs":
        return False
    try:
        doc = json.loads(str(record.get("body", "")))
    except ValueError:
        return False
    return isinstance(doc, dict) and CONTINUE_FIELD in doc


def hand_over(
    jobs: Jobs,
    queue: WorkQueue,
    request: Continuation,
    checkpoint: Checkpoint,
    key: bytes,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Store the checkpoint (giving up the lease), then ask for a fresh invocation.

    In this order: should the send fail, the invocation fails and its own trigger (the S3 event's
    retry, or the continuation message coming back) resumes from the stored checkpoint.
    """
    jobs.checkpoint(
        request.job_id,
        checkpoint=checkpoint.to_json(),
        rows=checkpoint.rows,
        rejected=checkpoint.rejected,
        batches=checkpoint.batches,
    )
    entries = [QueueEntry(id="1", body=build_message(request, key))]
    for attempt in range(_SEND_ATTEMPTS):
        if attempt:
            sleep(0.2 * 2**attempt)
        refused = queue.send_batch(entries)
        if not refused:
            logger.info(
                "ingest continues in a fresh invocation",
                key=request.key,
                part=checkpoint.part,
                rows=checkpoint.rows,
                batches=checkpoint.batches,
                next_row=checkpoint.next_row,
            )
            return
    raise RuntimeError(f"the continuation queue refused the message after {_SEND_ATTEMPTS} attempts")


def skip_rows(rows: Iterator[_T], count: int, keep_alive: Callable[[], None]) -> Iterator[_T]:
    """``rows`` past the first ``count`` (already read by an earlier part), renewing the lease as it goes."""
    for done in range(0, count, _SKIP_STEP):
        keep_alive()
        collections.deque(itertools.islice(rows, min(_SKIP_STEP, count - done)), maxlen=0)
    return rows


def storable(point: ResumePoint | None) -> ResumePoint | None:
    """``point`` if it is small enough to keep on the job's item; else None (the rows are skipped)."""
    if point is None or len(json.dumps(point.to_dict())) > MAX_RESUME_CHARS:
        return None
    return point


def rejects_part(resumed: Checkpoint, continues: bool) -> int:
    """The part number of this invocation's rejects file: 0 (the plain name) for a one-part job."""
    return resumed.part + 1 if continues or resumed.part else 0


__all__: Sequence[str] = (
    "CONTINUE_FIELD",
    "Checkpoint",
    "Continuation",
    "ForgedContinuation",
    "build_message",
    "hand_over",
    "is_continuation",
    "parse_message",
    "rejects_part",
    "skip_rows",
    "storable",
)
