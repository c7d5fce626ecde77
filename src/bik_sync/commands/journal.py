"""push's journal: every request BIK settled, by row number, in a SQLite file beside the outputs.

A push records each request the moment BIK's answer arrives (one transaction each), so a push
stopped by Ctrl-C or killed sends, when run again, only the rows BIK has not confirmed or refused.
The journal belongs to one file (its SHA-256), one way of reading it (mapping and options) and one
BIK (URL and appId): any change starts it over, and the push says why.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock, the journal still works
    fcntl = None  # type: ignore[assignment]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY, max_row INTEGER NOT NULL, created INTEGER NOT NULL,
    updated INTEGER NOT NULL, unmatched TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settled_rows (row INTEGER PRIMARY KEY, request INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_rows (row INTEGER PRIMARY KEY, reason TEXT NOT NULL);
"""


class JournalBusy(RuntimeError):
    """Another push of the same file into the same folder is running."""


@dataclass(frozen=True, slots=True)
class Identity:
    file_digest: str  # SHA-256 of the file's bytes
    reading: str  # the mapping and read options, as one string
    target: str  # BIK's URL and the appId

    def as_dict(self) -> dict[str, str]:
        return {"file_digest": self.file_digest, "reading": self.reading, "target": self.target}


@dataclass(frozen=True, slots=True)
class Totals:
    created: int = 0
    updated: int = 0
    unmatched: tuple[str, ...] = ()


class Journal:
    def __init__(self, path: Path, identity: Identity, *, restart: bool = False) -> None:
        """Opens (or starts over) the journal at ``path``; ``notice`` says which, for the user."""
        self.path = path
        self._lock = _lock(path)
        self.notice = ""
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process, not a power cut
            self._db.executescript(_SCHEMA)
            self._start(identity, restart)
        except BaseException:
            self._lock.close()
            raise

    def _start(self, identity: Identity, restart: bool) -> None:
        kept = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        settled = self.settled_count()
        wanted = identity.as_dict()
        if kept and settled and kept != wanted and not restart:
            self.notice = _why_over(kept, wanted) + ": starting over"
        elif restart and settled:
            self.notice = "--restart: starting over"
        elif settled:
            self.notice = f"resuming: {settled:,} rows BIK settled in an earlier run are not sent again"
        if kept != wanted or restart:
            with self._transaction():
                for table in ("meta", "requests", "settled_rows", "rejected_rows"):
                    self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def settled_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM settled_rows").fetchone()[0])

    def settled_between(self, first: int, last: int) -> set[int]:
        rows = self._db.execute("SELECT row FROM settled_rows WHERE row BETWEEN ? AND ?", (first, last))
        return {int(row) for (row,) in rows}

    def rejected_between(self, first: int, last: int) -> dict[int, str]:
        rows = self._db.execute(
            "SELECT row, reason FROM rejected_rows WHERE row BETWEEN ? AND ?", (first, last)
        )
        return {int(row): str(reason) for row, reason in rows}

    def record(
        self,
        rows: Sequence[int],
        *,
        created: int,
        updated: int,
        rejected: Sequence[tuple[int, str]],
        unmatched: Sequence[str],
    ) -> None:
        """One answer of BIK: the rows it settled, how, in one transaction."""
        if not rows:
            return
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO requests (max_row, created, updated, unmatched) VALUES (?, ?, ?, ?)",
                (max(rows), created, updated, json.dumps(list(unmatched))),
            )
            request = cursor.lastrowid
            self._db.executemany(
                "INSERT OR REPLACE INTO settled_rows VALUES (?, ?)", ((r, request) for r in rows)
            )
            self._db.executemany("INSERT OR REPLACE INTO rejected_rows VALUES (?, ?)", rejected)

    def totals(self, up_to_row: int | None = None) -> Totals:
        """What BIK's answers counted, over every request (or those within the first ``up_to_row`` rows)."""
        query = "SELECT created, updated, unmatched FROM requests"
        params: tuple[int, ...] = ()
        if up_to_row is not None:
            query, params = query + " WHERE max_row <= ?", (up_to_row,)
        created = updated = 0
        unmatched: list[str] = []
        for c, u, text in self._db.execute(query, params):
            created, updated = created + int(c), updated + int(u)
            unmatched.extend(json.loads(text))
        return Totals(created, updated, tuple(unmatched))

    def close(self) -> None:
        self._db.close()
        self._lock.close()


def _why_over(kept: dict[str, str], wanted: dict[str, str]) -> str:
    if kept.get("file_digest") != wanted["file_digest"]:
        return "the file changed since the last push"
    if kept.get("reading") != wanted["reading"]:
        return "the mapping or the read options changed since the last push"
    return "the BIK URL or the app id changed since the last push"


def _lock(path: Path) -> IO[bytes]:
    handle = path.with_name(path.name + ".lock").open("ab")
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise JournalBusy(f"another push is using {path}") from None
    return handle
