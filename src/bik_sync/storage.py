"""S3 adapter: read an input object as a stream, write outputs. The client is passed in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from bik_sync.records import load_mapping
from bik_sync.s3_events import S3ObjectRef


class MappingError(ValueError):
    """The column-mapping file is missing or invalid; the message names the file and the problem."""


class InputMissing(LookupError):
    """The object announced by the event is gone (deleted or overwritten before we read it)."""


@dataclass(frozen=True, slots=True)
class InputObject:
    body: BinaryIO
    version_id: str
    etag: str

    @property
    def identity(self) -> str:
        """What names this content: the version where the bucket is versioned, else the ETag."""
        return self.version_id or self.etag


def open_input(s3: Any, ref: S3ObjectRef) -> InputObject:
    """The object's body as a stream (not yet read), with the version and ETag S3 served.

    The event's version is used when it has one; moto's notifications (and unversioned buckets)
    have none, so the identity always comes from S3's answer, which is the same for every shape.
    """
    kwargs: dict[str, str] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        response = s3.get_object(**kwargs)
    except s3.exceptions.NoSuchKey:
        raise InputMissing(f"{ref.uri} no longer exists") from None
    return InputObject(
        body=response["Body"],
        version_id=str(response.get("VersionId") or ""),
        etag=str(response.get("ETag", "")).strip('"'),
    )


MAPPINGS_PREFIX = "mappings/"


def folder_mapping_keys(key: str, incoming_prefix: str = "incoming/") -> list[str]:
    """The mapping files a key's folders may have, nearest first.

    ``incoming/hubspot/2024/x.csv`` -> ``mappings/hubspot/2024.json``, ``mappings/hubspot.json``.
    """
    folders = key.removeprefix(incoming_prefix).split("/")[:-1]
    return [
        f"{MAPPINGS_PREFIX}{'/'.join(folders[:depth])}.json"
        for depth in range(len(folders), 0, -1)
        if all(folders[:depth])
    ]


def resolve_mapping(s3: Any, bucket: str, key: str, default_uri: str) -> tuple[dict[str, str] | None, str]:
    """The mapping an input uses, and where it came from (an ``s3://`` URI, or ``"presets"``).

    A file under ``incoming/<folder>/`` uses ``mappings/<folder>.json`` when it exists (the nearest
    folder's first), else the deployment's default mapping, else the built-in presets alone.
    """
    for candidate in folder_mapping_keys(key):
        uri = f"s3://{bucket}/{candidate}"
        try:
            text = _s3_text(s3, bucket, candidate, uri)
        except s3.exceptions.NoSuchKey:
            continue
        return _parse_mapping(text, uri), uri
    if default_uri:
        return read_mapping(default_uri, s3), default_uri
    return None, "presets"


def read_mapping(uri: str, s3: Any | None = None) -> dict[str, str]:
    """A user mapping file from a local path or (given an S3 client) an ``s3://bucket/key`` URI."""
    if uri.startswith("s3://"):
        if s3 is None:
            raise MappingError(f"{uri}: validate reads a local mapping file (s3:// is for the Lambda)")
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            text = _s3_text(s3, bucket, key, uri)
        except s3.exceptions.NoSuchKey:
            raise MappingError(f"cannot read the mapping file {uri}: it does not exist") from None
    else:
        try:
            with open(uri, encoding="utf-8-sig") as handle:
                text = handle.read()
        except OSError as exc:
            raise MappingError(f"cannot read the mapping file {uri}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise MappingError(f"cannot read the mapping file {uri}: it is not UTF-8 text") from None
    return _parse_mapping(text, uri)


# A mapping is a few hundred bytes; anything far larger is not one.
_MAX_MAPPING_BYTES = 1 << 20


def _s3_text(s3: Any, bucket: str, key: str, uri: str) -> str:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    data: bytes = body.read(_MAX_MAPPING_BYTES + 1)
    if len(data) > _MAX_MAPPING_BYTES:
        raise MappingError(f"cannot read the mapping file {uri}: it is larger than 1 MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(f"cannot read the mapping file {uri}: it is not UTF-8 text") from None


def _parse_mapping(text: str, uri: str) -> dict[str, str]:
    try:
        return load_mapping(text, uri)
    except ValueError as exc:
        raise MappingError(str(exc)) from None


def put_file(s3: Any, bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
    """Upload a (spooled) file from its start; large ones go up in parts."""
    fileobj.seek(0)
    s3.upload_fileobj(fileobj, bucket, key, ExtraArgs={"ContentType": content_type})


def put_json(s3: Any, bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
