"""Shared helpers for the record core's tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from bik_sync.records import ReadOptions, RecordFile, Row
from bik_sync.records.formats import open_records

FIXTURES = Path(__file__).parent / "fixtures"


class OneWayStream(io.RawIOBase):
    """A non-seekable stream that hands out a few bytes at a time, like a botocore StreamingBody."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data = data
        self._offset = 0
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        size = self._chunk if size < 0 else min(size, self._chunk)
        piece = self._data[self._offset : self._offset + size]
        self._offset += len(piece)
        return piece


Reader = Callable[..., tuple[RecordFile, list[Row]]]


def read_bytes(data: bytes, name: str = "customers.csv", **options: object) -> tuple[RecordFile, list[Row]]:
    record_file = open_records(io.BytesIO(data), name, ReadOptions(**options))  # type: ignore[arg-type]
    return record_file, list(record_file)


@pytest.fixture
def read() -> Reader:
    return read_bytes


@pytest.fixture
def read_fixture() -> Reader:
    def reader(name: str, **options: object) -> tuple[RecordFile, list[Row]]:
        return read_bytes((FIXTURES / name).read_bytes(), name, **options)

    return reader
