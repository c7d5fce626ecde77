"""The batching rule, in one place: at most N records and B bytes of API body per batch.

Ingest packs work messages with it and delivery packs BIK requests with it, counting bytes the
same way (the API body: ``{"userProperties":[`` + records joined by commas + ``]}``), so a work
message packed up to the cap becomes exactly one request. A body that carries ``appId`` opens with
more bytes: ``overhead`` (``bik.body_overhead(app_id)``) counts them.
"""

from __future__ import annotations

from bik_sync.bik import body_overhead

BODY_OVERHEAD = body_overhead()


class BatchPacker:
    """Counts records into batches in order; a record too large for the cap alone gets a batch of its own."""

    __slots__ = ("_bytes", "_count", "max_bytes", "max_records", "overhead")

    def __init__(self, *, max_records: int, max_bytes: int, overhead: int = BODY_OVERHEAD) -> None:
        if max_records < 1:
            raise ValueError("batch_size must be at least 1")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.overhead = overhead
        self._count = 0
        self._bytes = overhead

    def add(self, size: int) -> bool:
        """Count in a record of ``size`` encoded bytes; True when it opens a new batch (the last is full)."""
        full = self._count > 0 and (
            self._count >= self.max_records or self._bytes + 1 + size > self.max_bytes
        )
        if full:
            self._count, self._bytes = 0, self.overhead
        self._bytes += size + (1 if self._count else 0)  # and the comma before it
        self._count += 1
        return full

    @property
    def body_bytes(self) -> int:
        """The API body size of the open batch."""
        return self._bytes
