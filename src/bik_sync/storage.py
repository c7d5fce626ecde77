"""S3: the :class:`~bik_sync.ports.ObjectStore` adapter, and reading inputs, mappings and JSON outputs.

The adapter takes its boto3 client as an argument; the helpers take any object store.
"""

from __future__ import annotations

import json
import re
from contextlib import closing
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from bik_sync import layout
from bik_sync.observability import logger
from bik_sync.ports import ObjectMissing, ObjectStore, RangeMissing, StoredObject
from bik_sync.records import load_mapping
from bik_sync.s3_events import S3ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The name ingest and the tests have always used for an opened input.
InputObject = StoredObject


class MappingError(ValueError):
    """The column-mapping file is missing or invalid; the message names the file and the problem."""


class InputMissing(LookupError):
    """The object announced by the event is gone (deleted or overwritten before we read it)."""


class InputChanged(RuntimeError):
    """The object was replaced or deleted between two reads of it."""


class S3ObjectStore:
    """The object store on S3."""

    def __init__(self, client: S3Client) -> None:
        self._s3 = client

    def open(self, bucket: str, key: str, *, version_id: str = "", start: int = 0) -> StoredObject:
        extra: dict[str, str] = {}
        if version_id:
            extra["VersionId"] = version_id
        if start:
            extra["Range"] = f"bytes={start}-"
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, **extra)  # type: ignore[arg-type]
        except self._s3.exceptions.NoSuchKey:
            raise ObjectMissing(f"s3://{bucket}/{key}") from None
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                raise RangeMissing(f"s3://{bucket}/{key} has no byte {start}") from None
            raise
        body: BinaryIO = response["Body"]  # type: ignore[assignment]  # a StreamingBody reads like a binary file
        if start:
            _read_to(body, start, response, f"s3://{bucket}/{key}")
        return StoredObject(
            body=body,
            version_id=str(response.get("VersionId") or ""),
            etag=str(response.get("ETag", "")).strip('"'),
            last_modified=response["LastModified"].timestamp() if "LastModified" in response else 0.0,
        )

    def put_file(self, bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
        """Upload from the file's start; large ones go up in parts."""
        fileobj.seek(0)
        self._s3.upload_fileobj(fileobj, bucket, key, ExtraArgs={"ContentType": content_type})

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def delete(self, bucket: str, key: str) -> None:
        self._s3.delete_object(Bucket=bucket, Key=key)


_SKIP_CHUNK = 1 << 20


def _read_to(body: BinaryIO, start: int, response: Any, uri: str) -> None:
    """Leave ``body`` at the object's byte ``start``: where a ranged answer starts there, as is.

    Some S3-compatible stores ignore Range and answer with the whole object (200, no ContentRange):
    its first bytes are then read past, never taken for the ones from ``start`` (a header read as a
    row, rows sent twice). Raises RangeMissing when the object holds no byte ``start``.
    """
    served = re.match(r"bytes (\d+)-", str(response.get("ContentRange") or ""))
    at = int(served[1]) if served else 0
    if at == start:
        return
    length = response.get("ContentLength")
    if at > start or (length is not None and at + int(length) <= start):
        body.close()
        raise RangeMissing(f"{uri} has no byte {start}")
    logger.warning(
        "the store ignored the range asked for; the bytes before it are read past", skipped=start - at
    )
    while at < start:
        chunk = body.read(min(_SKIP_CHUNK, start - at))
        if not chunk:
            body.close()
            raise RangeMissing(f"{uri} has no byte {start}")
        at += len(chunk)


def open_input(objects: ObjectStore, ref: S3ObjectRef, start: int = 0) -> StoredObject:
    """The object's body as a stream (not yet read), with the version and ETag the store served;
    from byte ``start`` on (a continuation reading on from a checkpoint's offset).

    The event's version is used when it has one; moto's notifications (and unversioned buckets)
    have none, so the identity always comes from the store's answer, which is the same for every shape.
    Raises :class:`InputChanged` when the object has no byte ``start`` (a shorter one replaced it).
    """
    try:
        return objects.open(ref.bucket, ref.key, version_id=ref.version_id, start=start)
    except RangeMissing:
        raise InputChanged(f"{ref.uri} is shorter than when it was read") from None
    except ObjectMissing:
        raise InputMissing(f"{ref.uri} no longer exists") from None


def reopen_input(objects: ObjectStore, ref: S3ObjectRef, first: StoredObject) -> BinaryIO:
    """The same content as ``first`` again, from its start (a second pass over the input).

    By its version where the bucket is versioned; otherwise the key again, checked against the ETag
    first read. Raises :class:`InputChanged` when it is not the same object any more.
    """
    try:
        again = objects.open(ref.bucket, ref.key, version_id=first.version_id)
    except ObjectMissing:
        raise InputChanged(f"{ref.uri} was deleted while it was being read") from None
    if (again.version_id, again.etag) != (first.version_id, first.etag):
        again.body.close()
        raise InputChanged(
            f"{ref.uri} was replaced while it was being read: the new upload is a job of its own"
        )
    return again.body


def resolve_mapping(
    objects: ObjectStore, bucket: str, key: str, default_uri: str
) -> tuple[dict[str, str] | None, str]:
    """The mapping an input uses, and where it came from (an ``s3://`` URI, or ``"presets"``).

    A file under ``incoming/<folder>/`` uses ``mappings/<folder>.json`` when it exists (the nearest
    folder's first), else the deployment's default mapping, else the built-in presets alone.
    """
    for candidate in layout.folder_mapping_keys(key):
        uri = f"s3://{bucket}/{candidate}"
        try:
            text = _stored_text(objects, bucket, candidate, uri)
        except ObjectMissing:
            continue
        return _parse_mapping(text, uri), uri
    if default_uri:
        return read_mapping(default_uri, objects), default_uri
    return None, "presets"


def read_mapping(uri: str, objects: ObjectStore | None = None) -> dict[str, str]:
    """A user mapping file from a local path or (given an object store) an ``s3://bucket/key`` URI."""
    if uri.startswith("s3://"):
        if objects is None:
            raise MappingError(f"{uri}: validate reads a local mapping file (s3:// is for the Lambda)")
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            text = _stored_text(objects, bucket, key, uri)
        except ObjectMissing:
            raise MappingError(f"cannot read the mapping file {uri}: it does not exist") from None
    else:
        try:
            with open(uri, encoding="utf-8-sig") as handle:
                text = handle.read(_MAX_MAPPING_BYTES + 1)
        except OSError as exc:
            raise MappingError(f"cannot read the mapping file {uri}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise MappingError(f"cannot read the mapping file {uri}: it is not UTF-8 text") from None
    return _parse_mapping(text, uri)


# A mapping is a few hundred bytes; anything far larger is not one.
_MAX_MAPPING_BYTES = 1 << 20


def _stored_text(objects: ObjectStore, bucket: str, key: str, uri: str) -> str:
    with closing(objects.open(bucket, key).body) as body:
        data = body.read(_MAX_MAPPING_BYTES + 1)
    if len(data) > _MAX_MAPPING_BYTES:
        raise MappingError(f"cannot read the mapping file {uri}: it is larger than 1 MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"cannot read the mapping file {uri}: it is not UTF-8 text") from None


def _parse_mapping(text: str, uri: str) -> dict[str, str]:
    if len(text) > _MAX_MAPPING_BYTES:
        raise MappingError(f"cannot read the mapping file {uri}: it is larger than 1 MiB")
    try:
        return load_mapping(text, uri)
    except ValueError as exc:
        raise MappingError(str(exc)) from None


def put_json(objects: ObjectStore, bucket: str, key: str, document: Any) -> None:
    """A JSON document as UTF-8 (``Müller``, not ``M\\u00fcller``: people read these files)."""
    body = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    objects.put_bytes(bucket, key, body, "application/json; charset=utf-8")
