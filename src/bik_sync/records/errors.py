"""Errors of the record core."""

from __future__ import annotations


class UnreadableFile(Exception):
    """The file cannot be read as records at all (empty, binary, truncated, no name column...).

    ``str(exc)`` is one line that says why and, for truncated or garbled input, where.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class RefusedWhole(UnreadableFile):
    """A file refused as a whole, not damaged at some point: none of its rows may be sent.

    Reading in two passes (ingest, ``bik-sync validate``), the first pass meets it before anything is
    sent, and the file ends ``unreadable``; damage is different, the rows before it are kept.
    """


class ReadingStopped(Exception):
    """Raised by a RecordFile's ``on_read`` callback to stop reading (the invocation's time is up)."""


class FieldError(ValueError):
    """One field's value is invalid; the message is worded like the API's."""
