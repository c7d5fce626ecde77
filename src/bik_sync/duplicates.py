"""Rows of one person in one file: found in a first pass, merged in file order, sent once.

Batches reach BIK side by side, so two rows of one person in different batches would leave BIK
with whichever arrived last. Instead, rows that share an identity (``phoneNumber``, ``email`` or
``partnerCustomerId``, directly or through other rows: A shares a phone with B, B an email with C)
are one person: their records are merged in file order and the merged record is sent once, at the
person's last row.

- **Pass 1** (:meth:`DuplicateMerger.from_rows`) reads the file through the record core and writes
  an 8-byte hash of each identity of each valid row, with the row's number, to a file on disk
  (:class:`IdentityIndex`: 2 MiB held at a time, then written in the order added and by partition of
  the hash, so that the end of pass 1 reads one partition at a time). The hashes shared by several
  rows link those rows; the groups they form (union-find) are kept as three arrays over the
  *duplicate* rows only (:class:`Groups`): the records of unique rows are never held, and neither
  are their numbers.
- **Pass 2** (:meth:`DuplicateMerger.feed`, the send loop): a unique row passes through; a row of a
  group is merged into the group's record, which is handed on at the group's last row. Only the
  records of groups still open are held (:attr:`DuplicateMerger.held`).

A file read in several invocations carries both on (``merge_state.py``): pass 1's index
(:meth:`IdentityIndex.dump`, :meth:`IdentityIndex.load`) while pass 1 has not reached the end, then
the groups and the records held (:meth:`DuplicateMerger.held_records`).

The merge is BIK's upsert replayed in file order: a later non-empty value replaces the earlier one
field by field, an empty or missing one leaves it; ``tags`` is a field like the others (BIK replaces
a user's tags with the list it is sent, so the last non-empty list wins). Pure: no AWS, no network.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import struct
import sys
import tempfile
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, compress, groupby, islice
from operator import itemgetter, le
from typing import Any

from bik_sync.records import IDENTITY_FIELDS, Row, UnreadableFile
from bik_sync.records.errors import ReadingStopped, RefusedWhole

HASH_BYTES = 8  # 2^64 values: two different identities of one file collide with odds ~ n^2 / 2^65
CHECK_EVERY = 1000  # rows between two calls of pass 1's ``keep_going``
_PAIR_BYTES = 2 * HASH_BYTES  # a pair on disk: the big-endian digest, then the row, big-endian
_FLUSH_BYTES = 1 << 21  # pairs held before they are written (twice: in order, and by partition)
_PARTITIONS = 256  # by the digest's first byte: groups() reads one at a time
_PART_PAIRS = 1 << 17  # a larger partition is split further (by the digest's next bytes)
_DUMP_PAIRS = 1 << 16  # pairs per array dump() yields
_LITTLE = sys.byteorder == "little"
_ROW = struct.Struct(">q")  # a row number as a pair ends

Sent = tuple[tuple[int, dict[str, Any]], ...]  # (row number, record) pairs to hand on, in order


# blake2b of "name:" for each identity field, copied per value: the digest of f"{name}:{value}"
_PREFIXED = tuple(
    (name, hashlib.blake2b(f"{name}:".encode(), digest_size=HASH_BYTES)) for name in IDENTITY_FIELDS
)


def _encoded(value: Any) -> bytes:
    """An identity's value as it is hashed: its text in UTF-8 (lone surrogates kept, as Python has them)."""
    text = value if type(value) is str else f"{value}"
    try:
        return text.encode()  # the same bytes as "surrogatepass" for any text without lone surrogates
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def merge_into(merged: dict[str, Any], later: Mapping[str, Any]) -> None:
    """``later``'s non-empty values replace ``merged``'s; empty or missing ones leave them."""
    for name, value in later.items():
        if value is None or value == "" or value == []:
            continue
        merged[name] = value


@dataclass(frozen=True, slots=True)
class Groups:
    """The duplicate rows of a file, in row order, each with its group (the index of the group's
    first row) and, for each group, its last row. Rows of no group are not listed."""

    rows: array[int] = field(default_factory=lambda: array("q"))
    group: array[int] = field(default_factory=lambda: array("q"))
    last: array[int] = field(default_factory=lambda: array("q"))  # by group index: the last row

    def group_of(self, row: int) -> int | None:
        at = bisect_left(self.rows, row)
        if at < len(self.rows) and self.rows[at] == row:
            return self.group[at]
        return None

    def is_last(self, group: int, row: int) -> bool:
        return self.last[group] == row

    @property
    def count(self) -> int:
        return len({*self.group})

    @property
    def duplicates(self) -> int:
        """Rows that are merged into an earlier row of their group."""
        return len(self.rows) - self.count


class IdentityIndex:
    """(identity hash, row number) pairs in a file on disk, deleted on :meth:`close`.

    The pairs are held in memory up to ``_FLUSH_BYTES``, then written to the file as one block,
    twice: in the order added (what :meth:`dump` reads), then by partition (the digest's first byte:
    what :meth:`groups` reads, one partition at a time). A pair is 16 bytes: the big-endian digest
    (blake2b-64 of ``name:value``, as ``_PREFIXED`` makes it), then the row number, big-endian.
    """

    def __init__(self, directory: str | None = None) -> None:
        # Unnamed (unlinked at once): an invocation that dies leaves nothing behind in /tmp.
        self._file = tempfile.TemporaryFile(prefix="bik-sync-identities-", dir=directory)  # noqa: SIM115
        self._end = 0  # bytes written
        self._written = 0  # pairs written
        # Per block: where it starts (the pairs in order), then where each partition starts, and its end.
        self._blocks: list[tuple[int, array[int]]] = []
        self._held = bytearray()  # the pairs not written yet, in the order added
        self._parts = [bytearray() for _ in range(_PARTITIONS)]  # the same pairs, by partition

    def add(self, row: int, record: Mapping[str, Any]) -> None:
        at = _ROW.pack(row)
        held, parts = self._held, self._parts
        for name, prefixed in _PREFIXED:
            value = record.get(name)
            if value is None or value == "":
                continue
            hashed = prefixed.copy()
            if type(value) is str:
                try:
                    hashed.update(value.encode())  # as "surrogatepass" encodes text without lone surrogates
                except UnicodeEncodeError:
                    hashed.update(value.encode("utf-8", "surrogatepass"))
            else:
                hashed.update(_encoded(value))
            pair = hashed.digest() + at
            parts[pair[0]] += pair
            held += pair
        if len(held) >= _FLUSH_BYTES:
            self._write()

    @property
    def pairs(self) -> int:
        """(hash, row) pairs added so far."""
        return self._written + len(self._held) // _PAIR_BYTES

    def dump(self) -> Iterator[array[int]]:
        """Every (hash, row) pair added, in the order added, as flat arrays ``h, row, h, row, ...``."""
        self._write()
        for start, bounds in self._blocks:
            for at in range(start, bounds[0], _DUMP_PAIRS * _PAIR_BYTES):
                yield _numbers(self._read(at, min(at + _DUMP_PAIRS * _PAIR_BYTES, bounds[0])))

    def load(self, flat: array[int]) -> None:
        """Pairs :meth:`dump` gave (of an earlier part of the file), added as they were."""
        if len(flat) % 2:
            raise ValueError("an odd count of numbers is no list of pairs")
        data = _numbers(flat).tobytes()  # big-endian, as the pairs are kept
        for start in range(0, len(data), _FLUSH_BYTES):
            piece = data[start : start + _FLUSH_BYTES]
            parts = self._parts
            for at in range(0, len(piece), _PAIR_BYTES):
                parts[piece[at]] += piece[at : at + _PAIR_BYTES]
            self._held += piece
            if len(self._held) >= _FLUSH_BYTES:
                self._write()

    def groups(self) -> Groups:
        """The groups of rows linked by shared hashes, transitively."""
        self._write()
        linked: list[tuple[array[int], array[int]]] = []  # the pairs of shared hashes, by partition
        for part in range(_PARTITIONS):
            data = b"".join(self._read(bounds[part], bounds[part + 1]) for _, bounds in self._blocks)
            numbers = array("q", data)
            del data
            rows = numbers[1::2]
            if _LITTLE:
                rows.byteswap()
            _shared(numbers[0::2], rows, linked)  # the hashes as stored: equal where the digests are
        return _grouped(linked)

    @property
    def bytes_on_disk(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()

    def _write(self) -> None:
        """The pairs held onto the file, as one block."""
        held = self._held
        if not held:
            return
        file = self._file
        file.seek(self._end)
        file.write(held)
        bounds = array("q", bytes(8 * (_PARTITIONS + 1)))
        at = self._end + len(held)
        for part, pairs in enumerate(self._parts):
            bounds[part] = at
            file.write(pairs)
            at += len(pairs)
        bounds[_PARTITIONS] = at
        self._blocks.append((self._end, bounds))
        self._end = at
        self._written += len(held) // _PAIR_BYTES
        self._held = bytearray()
        self._parts = [bytearray() for _ in range(_PARTITIONS)]

    def _read(self, start: int, stop: int) -> bytes:
        self._file.seek(start)
        return self._file.read(stop - start)


def _numbers(numbers: Iterable[int] | bytes) -> array[int]:
    """Signed 64-bit numbers from (or to) big-endian bytes: a byte-swapped copy on a little-endian machine."""
    swapped = array("q", numbers)
    if _LITTLE:
        swapped.byteswap()
    return swapped


def _shared(
    hashes: array[int], rows: array[int], linked: list[tuple[array[int], array[int]]], depth: int = 1
) -> None:
    """The pairs of ``hashes`` found more than once, onto ``linked`` (in the order given); a part
    of more than ``_PART_PAIRS`` pairs is split by the digests' byte ``depth`` first."""
    count = len(hashes)
    if count > _PART_PAIRS and depth < HASH_BYTES:
        keys = hashes.tobytes()[depth::HASH_BYTES]  # the hashes are digests as stored: byte `depth` of each
        pieces = min(-(-count // _PART_PAIRS), 256)
        for piece in range(pieces):
            mask = keys.translate(bytes(key * pieces >> 8 == piece for key in range(256)))
            _shared(array("q", compress(hashes, mask)), array("q", compress(rows, mask)), linked, depth + 1)
        return
    # Until a first hash is shared, a set (cheaper than counting) finds there is none in most parts
    if not linked and len(set(hashes)) == count:
        return
    counts = Counter(hashes)
    if len(counts) == count:
        return
    shared = {h for h, seen in counts.items() if seen > 1}
    mask = bytes(map(shared.__contains__, hashes))
    linked.append((array("q", compress(hashes, mask)), array("q", compress(rows, mask))))


def _grouped(linked: list[tuple[array[int], array[int]]]) -> Groups:
    """Groups of the rows of ``linked`` (pairs of shared hashes; a hash's pairs all in one entry)."""
    rows = _distinct_in_order([rows for _, rows in linked])
    finder = _UnionFind(len(rows))
    for hashes, their_rows in linked:
        first: dict[int, int] = {}  # hash -> where in ``rows`` the first of its rows met is
        for h, row in zip(hashes, their_rows, strict=True):
            at = bisect_left(rows, row)
            linked_to = first.setdefault(h, at)
            if linked_to != at:
                finder.union(linked_to, at)
    group = finder.roots()
    last = array("q", bytes(8 * len(rows)))
    for at, row in enumerate(rows):  # in row order: each group's last write is its last row
        last[group[at]] = row
    return Groups(rows=rows, group=group, last=last)


def _distinct_in_order(runs: list[array[int]]) -> array[int]:
    """The numbers of ``runs``, each once, in order (merged when each run is in order, as pairs
    added in row order leave them; sorted otherwise)."""
    if all(all(map(le, run, islice(run, 1, None))) for run in runs):
        merged: Iterable[int] = heapq.merge(*runs)
    else:
        merged = sorted(chain.from_iterable(runs))
    return array("q", map(itemgetter(0), groupby(merged)))


class _UnionFind:
    """Over 0..n-1; a set's root is its smallest member (the group's first row)."""

    def __init__(self, size: int) -> None:
        self._parent = array("q", range(size))

    def find(self, at: int) -> int:
        parent = self._parent
        while parent[at] != at:
            parent[at] = parent[parent[at]]
            at = parent[at]
        return at

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self._parent[max(root_a, root_b)] = min(root_a, root_b)

    def roots(self) -> array[int]:
        for at in range(len(self._parent)):
            self._parent[at] = self.find(at)
        return self._parent


def until_refused(rows: Iterable[Row], refused: list[RefusedWhole]) -> Iterator[Row]:
    """``rows``, ending where the file is refused whole with the refusal put in ``refused``: to
    :func:`index_rows` damage is the end of the rows, and a refusal is damage of a kind, so the
    caller raises it once pass 1 is over (none of the file may be sent)."""
    try:
        yield from rows
    except RefusedWhole as exc:
        refused.append(exc)


def index_rows(
    rows: Iterable[Row], index: IdentityIndex, keep_going: Callable[[], bool] = lambda: True
) -> tuple[int, bool]:
    """Pass 1: each valid row's identities into ``index``; the rows done, and whether that is the end.

    ``keep_going`` is asked before every ``CHECK_EVERY``-th row; on False, or when a RecordFile's
    on_read stops reading (ReadingStopped), pass 1 stops before that row: a later part skips the rows
    done and reads on. Damage is an end (the rows read so far are the index: pass 2 meets the same end).
    """
    done = 0
    try:
        for row in rows:
            if (done + 1) % CHECK_EVERY == 0 and not keep_going():
                return done, False
            done += 1
            if row.record is not None:
                index.add(row.number, row.record)
    except ReadingStopped:
        return done, False
    except UnreadableFile:
        pass
    return done, True


class DuplicateMerger:
    """Pass 2: hands records on, a group's merged record once, at its last row."""

    def __init__(
        self, groups: Groups | None = None, held: Iterable[tuple[int, int, dict[str, Any]]] = ()
    ) -> None:
        """``held``: an earlier part's :meth:`held_records`, the groups it left open."""
        self._groups = groups or Groups()
        # group -> (latest row fed, merged record)
        self._open: dict[int, tuple[int, dict[str, Any]]] = {group: (row, rec) for group, row, rec in held}
        self.duplicates = 0  # rows merged into an earlier row of their person so far

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Row],
        *,
        directory: str | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> DuplicateMerger:
        """Pass 1 over a file's rows (a RecordFile of its own: they are read once).

        ``keep_going`` is asked before every ``CHECK_EVERY``-th row; on False, or when the file turns
        out damaged, the rows read so far are the index (pass 2 meets the same end). Raises
        RefusedWhole when the file is refused whole.
        """
        index = IdentityIndex(directory)
        refused: list[RefusedWhole] = []
        try:
            # Damage, or the time running out: the rows read so far are the index.
            index_rows(until_refused(rows, refused), index, keep_going)
            if refused:
                raise refused[0]  # the file is refused whole: nothing of it is sent
            return cls(index.groups())
        finally:
            index.close()

    @property
    def groups(self) -> Groups:
        return self._groups

    @property
    def held(self) -> int:
        """Records held: those of groups whose last row has not been fed yet."""
        return len(self._open)

    def feed(self, row: int, record: dict[str, Any]) -> Sent:
        """What to send after ``row``: itself, nothing (held), or its group's merged record."""
        group = self._groups.group_of(row)
        if group is None:
            return ((row, record),)
        held = self._open.pop(group, None)
        if held is None:
            merged = dict(record)
        else:
            merged = held[1]
            merge_into(merged, record)
            self.duplicates += 1
        if self._groups.is_last(group, row):
            return ((row, merged),)
        self._open[group] = (row, merged)
        return ()

    def held_records(self) -> list[tuple[int, int, dict[str, Any]]]:
        """The groups still open, as (group, latest row fed, merged record): for the next part."""
        return [(group, row, record) for group, (row, record) in self._open.items()]

    def held_rows(self) -> int:
        """Rows fed whose values are only in the records held (each open group's rows so far)."""
        rows, group, held = self._groups.rows, self._groups.group, self._open
        return sum(1 for at, of in enumerate(group) if of in held and rows[at] <= held[of][0])

    def flush(self) -> Sent:
        """The records of groups still open (reading stopped early), each at its latest row read."""
        held = sorted(self._open.values(), key=lambda pair: pair[0])
        self._open.clear()
        return tuple(held)
