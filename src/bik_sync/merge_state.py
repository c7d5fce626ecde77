"""Rows of one person across the parts of a file read in several invocations: the state object.

Merging (``duplicates.py``) needs the whole file's groups before its first record is sent, and the
records of people whose last row is still ahead. When an invocation hands over (``checkpoint.py``),
what the next one needs is written to one object under ``state/`` (``layout.duplicates_state_key``,
a prefix that never triggers ingest), and the :class:`MergeState` that names it, with its size and
SHA-256, goes into the checkpoint on the job's item:

- while pass 1 has not reached the end (``indexing``), the identity index so far: every (hash, row)
  pair, 16 bytes each; the next invocation loads it, skips the rows pass 1 read and reads on;
- once pass 2 sends, the groups (three arrays of 8-byte numbers over the duplicate rows only) and
  the merged records of the groups still open at the hand-over (``held``), one JSON line each.

A file with no row of one person carries nothing once pass 1 is done. Each object is written before
the checkpoint that names it, under a key of its own (its part and digest): a crash in between
leaves the previous checkpoint and the object it names as they were. The previous object is deleted
once the next checkpoint is stored, the last one when the job's ingest is done; the bucket's
lifecycle rule on ``state/`` removes those of jobs abandoned in between.

Others may write to the bucket, so an object is read back only if its size and SHA-256 are the ones
the checkpoint holds (the job's item, which only ingest writes): anything else raises
:class:`StateInvalid`, which ends the job ``incomplete`` with the reason. The object holds personal
data (the records held): it is never logged, only its key and counts are.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from bik_sync import layout
from bik_sync.duplicates import DuplicateMerger, Groups, IdentityIndex
from bik_sync.messages import JobMeta
from bik_sync.observability import logger
from bik_sync.ports import ObjectMissing, ObjectStore

_FORMAT = "bik-sync/duplicates-state"
_VERSION = 1
_CONTENT_TYPE = "application/octet-stream"
_CHUNK = 1 << 20
_PAIRS_CHUNK = 65_536
_HEADER_MAX = 4096


class StateInvalid(ValueError):
    """The state object a checkpoint names is missing, or is not the object ingest wrote there."""


@dataclass(frozen=True, slots=True)
class MergeState:
    """The checkpoint's part: the state object (none: ``key`` is empty) and what it stands for."""

    key: str = ""
    sha256: str = ""
    size: int = 0
    indexing: bool = False  # pass 1 has not reached the end: the object is its index so far
    indexed: int = 0  # rows pass 1 has read (while indexing; the next part skips them)
    held: int = 0  # people whose merged record is in the object (groups open at the hand-over)
    held_rows: int = 0  # rows read whose values are only in those records

    def to_doc(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "sha256": self.sha256,
            "size": self.size,
            "indexing": self.indexing,
            "indexed": self.indexed,
            "held": self.held,
            "held_rows": self.held_rows,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> MergeState:
        """From the checkpoint's JSON; an older checkpoint has none: nothing carried."""
        return cls(
            key=str(doc.get("key", "")),
            sha256=str(doc.get("sha256", "")),
            size=int(doc.get("size", 0)),
            indexing=bool(doc.get("indexing", False)),
            indexed=int(doc.get("indexed", 0)),
            held=int(doc.get("held", 0)),
            held_rows=int(doc.get("held_rows", 0)),
        )


def save_index(
    objects: ObjectStore, job: JobMeta, part: int, index: IdentityIndex, indexed: int
) -> MergeState:
    """Pass 1's index so far, written by part ``part``; ``indexed``: the rows pass 1 has read."""

    def body(spool: IO[bytes]) -> None:
        for flat in index.dump():
            _little_endian(flat).tofile(spool)

    pairs = index.pairs
    if not pairs:  # no valid row yet: nothing to carry
        return MergeState(indexing=True, indexed=indexed)
    key, digest, size = _put(objects, job, part, {"kind": "index", "pairs": pairs}, body)
    return MergeState(key=key, sha256=digest, size=size, indexing=True, indexed=indexed)


def save_merger(objects: ObjectStore, job: JobMeta, part: int, merger: DuplicateMerger) -> MergeState:
    """The groups and the records held, written by part ``part`` (nothing when no row is a duplicate)."""
    groups = merger.groups
    if not groups.rows:
        return MergeState()
    held = merger.held_records()

    def body(spool: IO[bytes]) -> None:
        for numbers in (groups.rows, groups.group, groups.last):
            _little_endian(numbers).tofile(spool)
        for entry in held:
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
            spool.write(line.encode("utf-8", "surrogatepass") + b"\n")

    header = {"kind": "groups", "rows": len(groups.rows), "held": len(held)}
    key, digest, size = _put(objects, job, part, header, body)
    return MergeState(key=key, sha256=digest, size=size, held=len(held), held_rows=merger.held_rows())


def load_index(
    objects: ObjectStore, bucket: str, job_id: str, state: MergeState, index: IdentityIndex
) -> None:
    """An earlier part's index into ``index`` (nothing when pass 1 had read no row)."""
    if not state.key:
        return
    with _verified(objects, bucket, job_id, state, "index") as (header, body):
        left = _count(header, "pairs")
        while left:
            flat = _read_numbers(body, 2 * min(left, _PAIRS_CHUNK))
            index.load(flat)
            left -= len(flat) // 2
        _at_end(body)


def load_merger(objects: ObjectStore, bucket: str, job_id: str, state: MergeState) -> DuplicateMerger:
    """The merger an earlier part handed over (one with no groups when nothing was carried)."""
    if not state.key:
        return DuplicateMerger()
    with _verified(objects, bucket, job_id, state, "groups") as (header, body):
        count = _count(header, "rows")
        rows, group, last = (_read_numbers(body, count) for _ in range(3))
        held = []
        for _ in range(_count(header, "held")):
            try:
                at, row, record = json.loads(body.readline())
            except (ValueError, TypeError):
                raise StateInvalid(_damaged(state)) from None
            if not (
                isinstance(at, int) and 0 <= at < count and isinstance(row, int) and isinstance(record, dict)
            ):
                raise StateInvalid(_damaged(state))
            held.append((at, row, record))
        _at_end(body)
    if any(not 0 <= at < count for at in group) or any(not 0 <= at < count for at, _, _ in held):
        raise StateInvalid(_damaged(state))
    return DuplicateMerger(Groups(rows=rows, group=group, last=last), held)


def discard(objects: ObjectStore, bucket: str, key: str, *, keep: str = "") -> None:
    """Delete a state object no checkpoint needs any more (best effort: the lifecycle rule is the
    backstop)."""
    if not key or key == keep:
        return
    try:
        objects.delete(bucket, key)
    except (BotoCoreError, ClientError) as exc:
        logger.warning(
            "duplicates state not deleted; the lifecycle rule removes it",
            state_key=key,
            reason=type(exc).__name__,
        )


def _put(
    objects: ObjectStore,
    job: JobMeta,
    part: int,
    header: dict[str, Any],
    body: Callable[[IO[bytes]], None],
) -> tuple[str, str, int]:
    """A header line, then ``body``; stored under a key that names the part and the digest."""
    head = {"format": _FORMAT, "version": _VERSION, "job": job.job_id, **header}
    with tempfile.TemporaryFile() as spool:
        spool.write(json.dumps(head, separators=(",", ":")).encode() + b"\n")
        body(spool)
        size = spool.tell()
        spool.seek(0)
        digest = hashlib.sha256()
        while chunk := spool.read(_CHUNK):
            digest.update(chunk)
        key = layout.duplicates_state_key(job.key, job.run, part, digest.hexdigest())
        objects.put_file(job.bucket, key, spool, _CONTENT_TYPE)
    logger.info("duplicates state written", state_key=key, bytes=size, part=part)
    return key, digest.hexdigest(), size


@contextmanager
def _verified(
    objects: ObjectStore, bucket: str, job_id: str, state: MergeState, kind: str
) -> Iterator[tuple[dict[str, Any], IO[bytes]]]:
    """The object's header and body, once its size and SHA-256 are the checkpoint's."""
    try:
        stored = objects.open(bucket, state.key)
    except ObjectMissing:
        raise StateInvalid(
            f"the state object {state.key} that carries rows of one person between invocations is gone"
        ) from None
    with tempfile.TemporaryFile() as spool:
        digest, size = hashlib.sha256(), 0
        with closing(stored.body):
            while chunk := stored.body.read(_CHUNK):
                size += len(chunk)
                if size > state.size:
                    break
                digest.update(chunk)
                spool.write(chunk)
        if size != state.size or digest.hexdigest() != state.sha256:
            raise StateInvalid(
                f"the state object {state.key} that carries rows of one person between invocations is "
                "not the one ingest wrote (its size or SHA-256 differs from the job's checkpoint)"
            )
        spool.seek(0)
        try:
            header = json.loads(spool.readline(_HEADER_MAX))
        except ValueError:
            raise StateInvalid(_damaged(state)) from None
        if not (
            isinstance(header, dict)
            and header.get("format") == _FORMAT
            and header.get("version") == _VERSION
            and header.get("job") == job_id
            and header.get("kind") == kind
        ):
            raise StateInvalid(_damaged(state))
        yield header, spool


def _count(header: dict[str, Any], name: str) -> int:
    value = header.get(name)
    if not isinstance(value, int) or value < 0:
        raise StateInvalid("the duplicates state object's header is damaged")
    return value


def _read_numbers(body: IO[bytes], count: int) -> array[int]:
    numbers = array("q")
    try:
        numbers.fromfile(body, count)
    except EOFError:
        raise StateInvalid("the duplicates state object ends early") from None
    return _little_endian(numbers)


def _little_endian(numbers: array[int]) -> array[int]:
    """The numbers as stored (little-endian, whatever the machine): a copy where they differ."""
    if sys.byteorder == "little":
        return numbers
    swapped = array("q", numbers)
    swapped.byteswap()
    return swapped


def _at_end(body: IO[bytes]) -> None:
    if body.read(1):
        raise StateInvalid("the duplicates state object has more in it than its header says")


def _damaged(state: MergeState) -> str:
    return f"the state object {state.key} that carries rows of one person between invocations is damaged"
