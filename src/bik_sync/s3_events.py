"""Turn the events that announce a new object into object references.

Three shapes reach IngestFunction: an S3 notification (``{"Records": [{"eventSource": "aws:s3"}]}``),
the same notification delivered through SQS (each record's body is the S3 event), and S3's
``s3:TestEvent`` (ignored). Keys are URL-encoded by S3 (``+`` for a space); moto also encodes the
``/`` as ``%2F`` and leaves out several fields, so everything but bucket and key is optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from bik_sync.job_state import UploadOrder, iso_millis


class EventShapeError(ValueError):
    """The event is not one that announces an S3 object."""


@dataclass(frozen=True, slots=True)
class S3ObjectRef:
    """One object an event names: where it is, and what the event says of the upload."""

    bucket: str
    key: str
    size: int | None = None
    etag: str = ""
    version_id: str = ""
    sequencer: str = ""
    event_time: float | None = None  # the event's eventTime (epoch seconds, to the millisecond)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def replaced_before_read(self, served_etag: str, served_version: str) -> bool:
        """Whether the upload this event announces is gone: the bucket keeps no versions (neither
        the event nor the object served names one, or only ``null``) and the object now holds other
        bytes than the event says (a later upload of the key replaced it before ingest read it).
        A versioned bucket whose events name no version (moto's) still keeps the upload."""
        unversioned = self.version_id in ("", "null") and served_version in ("", "null")
        return bool(self.etag) and unversioned and self.etag != served_etag

    def upload_order(self, *, run: str, served_etag: str, last_modified: float) -> UploadOrder:
        """Where the upload read stands among the uploads of its key (see ``UploadOrder``).

        The event's sequencer and time are those of the upload read when the event names its
        version (the object was read by it), or else when its ETag is the one served and its time
        is not before the object's LastModified (whole seconds): an event replayed after a newer
        upload of the key, even of the same bytes, is not taken for it. Otherwise the upload is
        placed by its LastModified alone.
        """
        # "null": the version of every upload while the bucket's versioning is suspended.
        matches = self.version_id not in ("", "null") or (
            (not self.etag or self.etag == served_etag)
            and self.event_time is not None
            and self.event_time + 1 > last_modified
        )
        if matches and self.event_time is not None:
            return UploadOrder(sequencer=self.sequencer, uploaded_at=iso_millis(self.event_time), run=run)
        if matches:
            return UploadOrder(sequencer=self.sequencer, uploaded_at=iso_millis(last_modified), run=run)
        return UploadOrder(uploaded_at=iso_millis(last_modified) if last_modified else "", run=run)


def objects_from_event(event: dict[str, Any]) -> list[S3ObjectRef]:
    """Every object an event announces, in order; test events and non-creation events are skipped."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise EventShapeError("event has no Records list")
    objects: list[S3ObjectRef] = []
    for record in records:
        if not isinstance(record, dict):
            raise EventShapeError("event record is not an object")
        if record.get("eventSource") == "aws:sqs":
            objects.extend(_objects_from_sqs_body(record.get("body", "")))
        elif "s3" in record:
            ref = _object_from_s3_record(record)
            if ref is not None:
                objects.append(ref)
        else:
            raise EventShapeError("event record is neither an S3 notification nor an SQS message")
    return objects


def _objects_from_sqs_body(body: str) -> list[S3ObjectRef]:
    try:
        inner = json.loads(body)
    except json.JSONDecodeError as exc:
        raise EventShapeError(f"SQS body is not JSON ({exc.msg})") from None
    if not isinstance(inner, dict):
        raise EventShapeError("SQS body is not a JSON object")
    if inner.get("Event") == "s3:TestEvent":
        return []
    return objects_from_event(inner)


def _object_from_s3_record(record: dict[str, Any]) -> S3ObjectRef | None:
    event_name = str(record.get("eventName", "ObjectCreated:"))
    if not event_name.startswith("ObjectCreated"):
        return None
    try:
        bucket = record["s3"]["bucket"]["name"]
        obj = record["s3"]["object"]
        key = unquote_plus(obj["key"])
    except (KeyError, TypeError, AttributeError):  # AttributeError: a key that is no text
        bucket = None
    if not isinstance(bucket, str):
        raise EventShapeError("S3 record lacks s3.bucket.name or s3.object.key")
    size = obj.get("size")
    return S3ObjectRef(
        bucket=bucket,
        key=key,
        size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        etag=str(obj.get("eTag", "")).strip('"'),
        version_id=str(obj.get("versionId", "") or ""),
        sequencer=str(obj.get("sequencer", "") or ""),
        event_time=_event_time(record.get("eventTime")),
    )


def _event_time(value: Any) -> float | None:
    """``2026-11-29T06:15:02.114Z`` as epoch seconds; None when absent or not a time."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None
