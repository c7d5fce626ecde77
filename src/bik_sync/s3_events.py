"""Turn the events that announce a new object into object references.

Three shapes reach IngestFunction: an S3 notification (``{"Records": [{"eventSource": "aws:s3"}]}``),
the same notification delivered through SQS (each record's body is the S3 event), and S3's
``s3:TestEvent`` (ignored). Keys are URL-encoded by S3 (``+`` for a space); moto also encodes the
``/`` as ``%2F`` and leaves out several fields, so everything but bucket and key is optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class EventShapeError(ValueError):
    """The event is not one that announces an S3 object."""


@dataclass(frozen=True, slots=True)
class S3ObjectRef:
    bucket: str
    key: str
    size: int | None = None
    etag: str = ""
    version_id: str = ""
    sequencer: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


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
    except (KeyError, TypeError):
        raise EventShapeError("S3 record lacks s3.bucket.name or s3.object.key") from None
    size = obj.get("size")
    return S3ObjectRef(
        bucket=bucket,
        key=key,
        size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        etag=str(obj.get("eTag", "")).strip('"'),
        version_id=str(obj.get("versionId", "") or ""),
        sequencer=str(obj.get("sequencer", "")),
    )
