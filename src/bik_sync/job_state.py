"""A job's state and counts, as plain values: what the job store keeps, whatever keeps it.

The job store (:mod:`bik_sync.jobs`, DynamoDB) and its in-memory fake share these types, the
items' keys and the reading of an item into a :class:`JobState`.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bik_sync import layout
from bik_sync.outcome import OTHER_REASONS, job_status, summarise_reasons

JOB_TTL_S = 30 * 24 * 3600
LISTED_BATCH_FILES = 100
# Distinct reasons a job's item counts; the rest are counted together (the item stays < 400 KB).
MAX_JOB_REASONS = 50
# Progress larger than this is not kept (the retry then sends everything again): items stay < 400 KB.
MAX_PROGRESS_CHARS = 300_000


def job_id_for(bucket: str, key: str, version: str) -> str:
    """A stable id for one version of one object: a redelivered event maps to the same job."""
    return hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class UploadOrder:
    """Where one upload of a key stands among the uploads of that key: which one is the latest.

    A job's run (``layout.job_run``) names its upload to the second, and two uploads within one
    second would be ordered by their ids (random). The order compares, most exact first:

    - the S3 events' ``sequencer`` (hexadecimal; AWS compares two of one key after left-padding
      the shorter with zeros, which is comparing them as numbers), when both uploads have one;
    - else ``uploaded_at``: the event's ``eventTime`` (milliseconds), or the object's LastModified
      when the event has none or is not of the upload that was read;
    - else (jobs stored before the order was) the run, as before.
    """

    sequencer: str = ""
    uploaded_at: str = ""  # ISO-8601 UTC with milliseconds: 2026-11-29T06:15:02.114Z
    run: str = ""

    def is_after(self, other: UploadOrder) -> bool:
        """Whether this upload is a later one than ``other`` (of the same key)."""
        mine, theirs = _sequence(self.sequencer), _sequence(other.sequencer)
        if mine is not None and theirs is not None and mine != theirs:
            return mine > theirs
        if self.uploaded_at and other.uploaded_at and self.uploaded_at != other.uploaded_at:
            return self.uploaded_at > other.uploaded_at
        return self.run > other.run

    def fields(self) -> dict[str, str]:
        """As the job's report holds it (absent parts left out)."""
        return {k: v for k, v in (("sequencer", self.sequencer), ("uploaded_at", self.uploaded_at)) if v}

    @classmethod
    def of_report(cls, report: Mapping[str, Any]) -> UploadOrder:
        return cls(
            sequencer=str(report.get("sequencer", "")),
            uploaded_at=str(report.get("uploaded_at", "")),
            run=str(report.get("run", "")),
        )


def _sequence(sequencer: str) -> int | None:
    try:
        return int(sequencer, 16) if sequencer else None
    except ValueError:
        return None


def iso_millis(epoch: float) -> str:
    """``2026-11-29T06:15:02.114Z``: an instant as ``uploaded_at`` holds it."""
    millis = round(epoch * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"


class StartOutcome(enum.Enum):
    STARTED = "started"
    DONE = "done"  # ingested already: a redelivered event
    BUSY = "busy"  # another ingest holds a live lease


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What the worker settled of one batch, added to its job once: the counts and the files written."""

    created: int = 0
    updated: int = 0
    rejected_invalid: int = 0  # failed our checks in the worker (records sent by other systems)
    rejected_by_bik: int = 0
    failed: int = 0
    rejects_key: str = ""
    failed_key: str = ""


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """A batch as its item stands: whether its counts are in the job yet, and what a receive saved."""

    counted: bool
    # What an earlier receive settled (as saved), and the digest of the records it was saved for.
    digest: str = ""
    progress: str | None = None


# eq=False (identity): nothing compares two states, and generating __eq__ and __hash__ over the 26
# fields at import is a cost of every cold start (hashing one failed anyway: ``details`` is a dict).
@dataclass(frozen=True, slots=True, eq=False)
class JobState:
    """A job as its item holds it: its input, how far ingest and the batches got, and the counts."""

    job_id: str
    bucket: str
    key: str
    source: str
    started_at: str
    run: str = ""  # the job's name among the jobs of its input (layout.job_run); "" for a message
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
    reasons: dict[str, int] = field(default_factory=dict)  # why rows were rejected or failed: a summary
    reasons_other: int = 0
    checkpoint: str = ""  # where an ingest read in parts stopped last (bik_sync.checkpoint), as JSON
    sequencer: str = ""  # the S3 event's, of the upload this job read ("" for moto's and a message)
    uploaded_at: str = ""  # the event's time, else the object's LastModified (UploadOrder)
    report_claimed: bool = False  # its report was written and logged (reporting.write_report_if_complete)

    @property
    def order(self) -> UploadOrder:
        return UploadOrder(sequencer=self.sequencer, uploaded_at=self.uploaded_at, run=self.run)

    @property
    def complete(self) -> bool:
        return self.ingest_done and self.batches_done >= self.batches_total

    @property
    def report_key(self) -> str:
        return layout.report_key(self.key, self.run)

    def report(self, finished_at: str) -> dict[str, Any]:
        invalid = self.rejected_at_ingest + self.rejected_in_worker
        return {
            "job_id": self.job_id,
            "source": self.source,
            "input": f"s3://{self.bucket}/{self.key}" if self.source == "s3" else self.key,
            "run": self.run,
            "status": job_status(
                read_status=str(self.details.get("status", "complete")),
                delivered=self.created + self.updated,
                failed=self.failed,
            ),
            "reasons": self.reasons_summary(),
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "rejected": invalid + self.rejected_by_bik,
            "failed": self.failed,
            # Rows merged into an earlier row of the same person (ingest's details): sent as one record.
            "duplicates": int(self.details.get("duplicates", 0)),
            "rejected_invalid": invalid,
            "rejected_by_bik": self.rejected_by_bik,
            "batches": self.batches_total,
            "report": self.report_key,
            # A huge job lists its first files; the prefixes find them all.
            "rejects_files": sorted(self.rejects_keys),
            "rejects_file_count": self.rejects_files,
            "rejects_prefix": layout.rejects_prefix(self.key, self.run),
            "failed_files": sorted(self.failed_keys),
            "failed_file_count": self.failed_files,
            "failed_prefix": layout.failed_prefix(self.key, self.run),
            "started_at": self.started_at,
            "finished_at": finished_at,
            **self.order.fields(),
            **{k: v for k, v in self.details.items() if k != "status"},
        }

    def reasons_summary(self) -> dict[str, int]:
        counts = dict(self.reasons)
        if self.reasons_other:
            counts[OTHER_REASONS] = counts.get(OTHER_REASONS, 0) + self.reasons_other
        return summarise_reasons(counts)

    @classmethod
    def from_item(cls, doc: Mapping[str, Any]) -> JobState:
        """A job's state from its item, as plain Python values (attribute names as stored)."""
        return cls(
            job_id=str(doc["pk"]).removeprefix("job#"),
            bucket=str(doc.get("bucket", "")),
            key=str(doc.get("key", "")),
            source=str(doc.get("source", "s3")),
            started_at=str(doc.get("started_at", "")),
            run=str(doc.get("run", "")),
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
            reasons={str(k): int(v) for k, v in (doc.get("reasons") or {}).items()},
            reasons_other=int(doc.get("reasons_other", 0)),
            checkpoint=str(doc.get("ingest_checkpoint", "")),
            sequencer=str(doc.get("sequencer", "")),
            uploaded_at=str(doc.get("uploaded_at", "")),
            report_claimed=bool(doc.get("report_claimed", False)),
        )


def job_pk(job_id: str) -> str:
    return f"job#{job_id}"


def batch_pk(job_id: str, batch: int) -> str:
    return f"job#{job_id}#batch#{batch}"


def iso_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; reports want plain JSON values."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
