"""Bytes to text: a peekable stream, gzip, refused binary formats, and the file's encoding.

The input need not be seekable (a botocore StreamingBody): detection peeks at the first
SAMPLE_BYTES and the readers then read the same bytes again from the start.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from collections.abc import Callable
from typing import Any, Final, Protocol

from bik_sync.records.errors import UnreadableFile

SAMPLE_BYTES: Final = 1 << 16


# --- bytes: a peekable, possibly non-seekable stream -----------------------------------------


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class Peekable(io.RawIOBase):
    """Replays what detection peeked at, then reads on from the inner stream."""

    def __init__(self, inner: _Readable) -> None:
        self._inner = inner
        self._head = b""
        self._offset = 0
        self._delivered = 0  # bytes read through this stream so far: its position
        # Whether it says it is seekable, for TextIOWrapper.tell() to work (see Position); it never seeks.
        self.tellable = False
        # Called as each piece is read (a RecordFile's on_read): also while lines that are no rows
        # (blank ones) are read, which the row loop never sees.
        self.on_read: Callable[[], None] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.tellable

    def tell(self) -> int:
        if not self.tellable:
            raise io.UnsupportedOperation("tell")
        return self._delivered

    def peek_bytes(self, size: int) -> bytes:
        while len(self._head) - self._offset < size:
            chunk = self._inner.read(size - len(self._head) + self._offset)
            if not chunk:
                break
            self._head += chunk
        return self._head[self._offset : self._offset + size]

    def readinto(self, buffer: Any) -> int:
        if self.on_read is not None:
            self.on_read()
        view = memoryview(buffer).cast("B")
        if self._offset < len(self._head):
            size = min(len(view), len(self._head) - self._offset)
            view[:size] = self._head[self._offset : self._offset + size]
            self._offset += size
            if self._offset == len(self._head):
                self._head, self._offset = b"", 0
            self._delivered += size
            return size
        chunk = self._inner.read(len(view))
        view[: len(chunk)] = chunk
        self._delivered += len(chunk)
        return len(chunk)


def read_guard(reason: str) -> Callable[[Exception], UnreadableFile]:
    def convert(exc: Exception) -> UnreadableFile:
        if isinstance(exc, EOFError):
            return UnreadableFile(f"truncated {reason}: the compressed data ends early")
        return UnreadableFile(f"corrupt {reason}: {exc}")

    return convert


gzip_error = read_guard("gzip file")
STREAM_ERRORS: Final = (EOFError, gzip.BadGzipFile, zlib.error)


# --- text: encodings --------------------------------------------------------------------------

_CP1252_TABLE: Final = tuple(bytes([byte]).decode("cp1252", errors="replace") for byte in range(256))
_CP1252_CHARS: Final = tuple(
    char if char != "\ufffd" else chr(byte) for byte, char in enumerate(_CP1252_TABLE)
)
ERRORS: Final = "bik-sync-cp1252"


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode bytes that are not valid in the file's encoding as cp1252 (latin-1 for its 5 gaps)."""
    if isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start : exc.end]
        return "".join(_CP1252_CHARS[byte] for byte in bad), exc.end
    raise exc


codecs.register_error(ERRORS, _cp1252_fallback)

_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f]")
_MAGIC: Final = (
    (b"PK\x03\x04", "a zip archive or an Excel workbook (.xlsx), not CSV or JSON: save it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls), not CSV or JSON: save it as CSV"),
    (b"%PDF", "a PDF document, not CSV or JSON"),
    (b"\x89PNG", "a PNG image, not CSV or JSON"),
    (b"\xff\xd8\xff", "a JPEG image, not CSV or JSON"),
    (b"BZh", "bzip2-compressed; only gzip compression is read"),
    (b"\xfd7zXZ", "xz-compressed; only gzip compression is read"),
    (b"7z\xbc\xaf", "a 7-Zip archive, not CSV or JSON"),
)


# A two- to four-byte UTF-8 sequence (a lead byte and its continuation bytes).
_UTF8_SEQUENCE: Final = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            raise UnreadableFile(f"the file is {what}")
    if b"\x00" in sample:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = max(1, len(sample) // 2)
        if odd > 0.3 * half and even < 0.02 * half:
            return "utf-16-le"
        if even > 0.3 * half and odd < 0.02 * half:
            return "utf-16-be"
        raise UnreadableFile("the file is binary, not CSV or JSON text (it contains NUL bytes)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        # A file with UTF-8 text in it is UTF-8 with a few stray bytes (rows pasted from another
        # file): those bytes alone are read as cp1252, as they are further on. Only a file with no
        # UTF-8 sequence at all is cp1252 throughout.
        return "utf-8" if _UTF8_SEQUENCE.search(sample) else "cp1252"
    return "utf-8"


def _decode_sample(sample: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors=ERRORS)
    return decoder.decode(sample, final=False)


def peek_head(stream: _Readable) -> tuple[Peekable, bytes, bool]:
    """The stream to read on from (gunzipped when it is gzip), its first bytes, whether compressed."""
    raw = Peekable(stream)
    try:
        head = raw.peek_bytes(SAMPLE_BYTES)
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc}") from None
    compressed = head.startswith(b"\x1f\x8b")
    if compressed:
        raw = Peekable(gzip.GzipFile(fileobj=raw, mode="rb"))
        try:
            head = raw.peek_bytes(SAMPLE_BYTES)
        except STREAM_ERRORS as exc:
            raise gzip_error(exc) from None
    if not head.strip():
        raise UnreadableFile("the file is empty" if not head else "the file holds only blank lines")
    return raw, head, compressed


def text_sample(head: bytes) -> tuple[str, str]:
    """The encoding of a text file's first bytes, and those bytes decoded; refuses binary data."""
    encoding = _detect_encoding(head)
    sample = _decode_sample(head, encoding)
    if not sample.strip("\ufeff \t\r\n"):
        raise UnreadableFile("the file is empty")
    controls = len(_CONTROL.findall(sample))
    if controls > max(2, len(sample) // 100):
        raise UnreadableFile("the file is binary, not CSV or JSON text (it contains control characters)")
    return encoding, sample


def open_text(raw: Peekable, encoding: str) -> io.TextIOWrapper:
    """The stream as text, bytes invalid in its encoding read as cp1252; newlines left to the reader."""
    return io.TextIOWrapper(
        io.BufferedReader(raw, SAMPLE_BYTES), encoding=encoding, errors=ERRORS, newline=""
    )


# --- positions: where in the bytes a line of the text starts ----------------------------------

_LOW_64: Final = (1 << 64) - 1


class Position:
    """Where an uncompressed file's text is in its bytes, for a reader to say where to carry on.

    The text is read through a TextIOWrapper over the Peekable, which then says it is seekable, so
    that ``TextIOWrapper.tell()`` works: it accounts exactly for every buffer on the way (the
    Peekable's replayed head, the BufferedReader's read-ahead, the decoded characters not yet
    handed out) and for every encoding, however many bytes a character takes.
    """

    __slots__ = ("base", "codec", "text")

    def __init__(self, raw: Peekable, encoding: str, codec: str, base: int = 0) -> None:
        raw.tellable = True  # before the TextIOWrapper is built: it asks once
        self.text = open_text(raw, encoding)
        self.codec = codec  # what decodes the file from any line's start (no BOM to look for there)
        self.base = base  # the byte of the object the stream starts at (a ranged read's start)

    def offset(self) -> int | None:
        """The object's byte at which the next character of the text starts; None unless a fresh
        decoder can start there and read exactly the characters the text reads on with.

        tell()'s cookie (CPython's, in C and in _pyio alike) packs the byte position in its low 64
        bits, then the decoder's flags, then the bytes to feed and characters to skip after that
        position. Only a cookie with nothing to feed or skip is a start. Its flags' lowest bit says
        that the newline decoder holds back a carriage return it decoded just before that byte (a
        line ending in CR LF, split there): the line starts at that CR, which is one byte in every
        encoding but UTF-16's (there, two bytes or a byte of a bad surrogate: not guessed).
        """
        try:
            cookie = self.text.tell()
        except (OSError, ValueError):  # not tellable (io.UnsupportedOperation is both), or closed
            return None
        if cookie >> 128:
            return None
        offset = self.base + (cookie & _LOW_64)
        if (cookie >> 64) & 1:
            if self.codec.startswith("utf-16"):
                return None
            offset -= 1
        return offset


def resume_codec(encoding: str, head: bytes) -> str:
    """The codec that reads a file of this encoding from a line's start: its BOM is not there."""
    if encoding == "utf-8-sig":
        return "utf-8"
    if encoding == "utf-16":
        return "utf-16-be" if head.startswith(codecs.BOM_UTF16_BE) else "utf-16-le"
    return encoding
