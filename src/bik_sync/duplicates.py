"""Rows of one person in one file: found in a first pass, merged in file order, sent once.

Batches reach BIK side by side, so two rows of one person in different batches would leave BIK
with whichever arrived last. Instead, rows that share an identity (``phoneNumber``, ``email`` or
``partnerCustomerId``, directly or through other rows: A shares a phone with B, B an email with C)
are one person: their records are merged in file order and the merged record is sent once, at the
person's last row.

- **Pass 1** (:meth:`DuplicateMerger.from_rows`) reads the file through the record core and writes
  an 8-byte hash of each identity of each valid row, with the row's number, to a SQLite file on disk
  (:class:`IdentityIndex`, a small page cache). The hashes shared by several rows link those rows;
  the groups they form (union-find) are kept as three arrays over the *duplicate* rows only
  (:class:`Groups`): the records of unique rows are never held, and neither are their numbers.
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

import contextlib
import hashlib
import os
import sqlite3
import sys
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bik_sync.records import IDENTITY_FIELDS, Row, UnreadableFile
from bik_sync.records.errors import ReadingStopped

HASH_BYTES = 8  # 2^64 values: two different identities of one file collide with odds ~ n^2 / 2^65
CHECK_EVERY = 1000  # rows between two calls of pass 1's ``keep_going``
_INSERT_CHUNK = 10_000
_PAIRS_PER_INSERT = 200  # (hash, row) pairs per INSERT statement: 400 parameters, under SQLite's 999
_CACHE_KIB = 2048  # SQLite's page cache; the rest of the index stays on disk

Sent = tuple[tuple[int, dict[str, Any]], ...]  # (row number, record) pairs to hand on, in order


def identity_hashes(record: Mapping[str, Any]) -> list[int]:
    """One signed 64-bit hash per identity the record has (field name and value: a phone never
    matches an id)."""
    digests = bytearray()
    _add_digests(record, 0, digests, array("q"))
    return [
        int.from_bytes(digests[at : at + HASH_BYTES], "big", signed=True)
        for at in range(0, len(digests), HASH_BYTES)
    ]


# blake2b of "name:" for each identity field, copied per value: the digest of f"{name}:{value}"
_PREFIXED = tuple(
    (name, hashlib.blake2b(f"{name}:".encode(), digest_size=HASH_BYTES)) for name in IDENTITY_FIELDS
)


def _add_digests(record: Mapping[str, Any], row: int, digests: bytearray, rows: array[int]) -> None:
    """The big-endian digest of each identity ``record`` has onto ``digests``, ``row`` onto ``rows``."""
    for name, prefixed in _PREFIXED:
        value = record.get(name)
        if value is None or value == "":
            continue
        hashed = prefixed.copy()
        hashed.update((value if type(value) is str else f"{value}").encode("utf-8", "surrogatepass"))
        digests += hashed.digest()
        rows.append(row)


def _as_hashes(digests: bytes | bytearray) -> array[int]:
    """Big-endian 8-byte digests as the signed 64-bit integers :func:`identity_hashes` gives."""
    hashes = array("q", digests)
    if sys.byteorder == "little":
        hashes.byteswap()
    return hashes


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


_INSERT_MANY = "INSERT INTO ids VALUES " + ", ".join(["(?, ?)"] * _PAIRS_PER_INSERT)  # noqa: S608 (placeholders only)


class IdentityIndex:
    """(identity hash, row number) pairs in a SQLite file on disk, deleted on :meth:`close`."""

    def __init__(self, directory: str | None = None) -> None:
        handle, self.path = tempfile.mkstemp(prefix="bik-sync-identities-", suffix=".sqlite", dir=directory)
        os.close(handle)
        self._db = sqlite3.connect(self.path)
        for pragma in (f"cache_size = -{_CACHE_KIB}", "journal_mode = OFF", "synchronous = OFF"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("PRAGMA temp_store = FILE")
        self._db.execute("CREATE TABLE ids (h INTEGER NOT NULL, row INTEGER NOT NULL)")
        self._digests = bytearray()  # of the pairs not written yet, as identity_hashes' digests
        self._rows = array("q")

    def add(self, row: int, record: Mapping[str, Any]) -> None:
        _add_digests(record, row, self._digests, self._rows)
        if len(self._rows) >= _INSERT_CHUNK:
            self._write()

    @property
    def pairs(self) -> int:
        """(hash, row) pairs added so far."""
        self._write()
        (count,) = self._db.execute("SELECT COUNT(*) FROM ids").fetchone()
        return int(count)

    def dump(self) -> Iterator[array[int]]:
        """Every (hash, row) pair added, in the order added, as flat arrays ``h, row, h, row, ...``."""
        self._write()
        cursor = self._db.execute("SELECT h, row FROM ids ORDER BY rowid")
        while pairs := cursor.fetchmany(_INSERT_CHUNK):
            yield array("q", (n for pair in pairs for n in pair))

    def load(self, flat: array[int]) -> None:
        """Pairs :meth:`dump` gave (of an earlier part of the file), added as they were."""
        self._write()
        if len(flat) % 2:
            raise ValueError("an odd count of numbers is no list of pairs")
        self._insert(flat.tolist())

    def groups(self) -> Groups:
        """The groups of rows linked by shared hashes, transitively."""
        self._write()
        db = self._db
        db.execute("CREATE INDEX ids_h ON ids (h, row)")
        db.execute(
            "CREATE TABLE linked AS SELECT h, row FROM ids"
            " WHERE h IN (SELECT h FROM ids GROUP BY h HAVING COUNT(*) > 1)"
        )
        rows = array("q", (row for (row,) in db.execute("SELECT DISTINCT row FROM linked ORDER BY row")))
        finder = _UnionFind(len(rows))
        previous_hash, first = None, -1
        for h, row in db.execute("SELECT h, row FROM linked ORDER BY h, row"):
            at = bisect_left(rows, row)
            if h == previous_hash:
                finder.union(first, at)
            else:
                previous_hash, first = h, at
        group = finder.roots()
        last = array("q", bytes(8 * len(rows)))
        for at, row in enumerate(rows):  # in row order: each group's last write is its last row
            last[group[at]] = row
        return Groups(rows=rows, group=group, last=last)

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _write(self) -> None:
        if self._rows:
            flat: list[int] = [0] * (2 * len(self._rows))
            flat[::2] = _as_hashes(self._digests).tolist()
            flat[1::2] = self._rows.tolist()
            self._insert(flat)
            self._digests, self._rows = bytearray(), array("q")

    def _insert(self, flat: list[int]) -> None:
        """Pairs ``h, row, h, row, ...``, many to a statement (SQLite's cost is mostly per statement)."""
        whole = len(flat) - len(flat) % (2 * _PAIRS_PER_INSERT)
        if whole:
            numbers = iter(flat[:whole])
            self._db.executemany(_INSERT_MANY, zip(*[numbers] * (2 * _PAIRS_PER_INSERT), strict=True))
        rest = flat[whole:]
        self._db.executemany("INSERT INTO ids VALUES (?, ?)", zip(rest[::2], rest[1::2], strict=True))


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
        out damaged, the rows read so far are the index (pass 2 meets the same end).
        """
        index = IdentityIndex(directory)
        try:
            # Damage, or the time running out: the rows read so far are the index.
            index_rows(rows, index, keep_going)
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
