"""Reading customer files: the way in, and which format a file is.

``open_records`` reads a binary stream (an open file or a botocore StreamingBody; it need not be
seekable) as CSV, a JSON array, an API body ``{"userProperties": [...]}`` or JSON lines, each
optionally gzip-compressed. CSV and JSON lines are read incrementally; JSON documents are parsed
element by element, so no format holds the whole file in memory. The bytes and their encoding are
``streams``'s; the readers are ``csv_reader``, ``json_reader`` and ``xlsx``.

A plain (uncompressed) CSV or JSON-lines file can also be read from a row boundary in its middle:
its RecordFile says where it stands between rows (``RecordFile.resume_point``), and
``resume_records`` reads on from there, given the bytes from that offset on.
"""

from __future__ import annotations

import json
from typing import BinaryIO

from bik_sync.records.csv_reader import open_csv, resume_csv
from bik_sync.records.json_reader import holds_records, is_wrapper, open_json, resume_jsonl
from bik_sync.records.options import ReadOptions
from bik_sync.records.rows import RecordFile, ResumePoint
from bik_sync.records.streams import (
    Peekable,
    Position,
    gzip_error,
    open_text,
    peek_head,
    resume_codec,
    text_sample,
)
from bik_sync.records.validate import RecordBuilder


def open_records(stream: BinaryIO, name: str, options: ReadOptions = ReadOptions()) -> RecordFile:  # noqa: B008
    """Open a stream of customer records; see the module docstring for what is read.

    Raises UnreadableFile when the file cannot be read at all (empty, binary, not CSV or JSON, no
    column that maps to a name, ...). Iterating the result may raise it later for input that is cut
    short or garbled further on.
    """
    raw, head, compressed = peek_head(stream)
    if options.format == "xlsx" or (options.format is None and head.startswith(b"PK\x03\x04")):
        from bik_sync.records.xlsx import open_xlsx  # here: only a workbook needs it (cold start)

        return open_xlsx(raw, name, options, RecordBuilder(options))
    encoding, sample = text_sample(head)
    fmt = options.format or _detect_format(sample, name)
    # A plain file's reader can say where in its bytes it stands: a gzip's bytes are not the text's.
    position = None if compressed else Position(raw, encoding, resume_codec(encoding, head))
    text = open_text(raw, encoding) if position is None else position.text
    stream_error = gzip_error if compressed else None
    if fmt == "csv":
        record_file = open_csv(text, sample, encoding, RecordBuilder(options), stream_error, position)
    else:
        record_file = open_json(text, sample, fmt, encoding, options, stream_error, position)
    record_file.attach_source(raw)
    return record_file


def resume_records(
    stream: BinaryIO,
    point: ResumePoint,
    options: ReadOptions = ReadOptions(),  # noqa: B008
) -> RecordFile:
    """The rows of a plain CSV or JSON-lines file after ``point`` (a RecordFile's resume_point), from
    ``stream``: the file's bytes from ``point.offset`` on. Rows keep the file's numbers, and are
    read with the header, delimiter, encoding and date order the file's start decided."""
    raw = Peekable(stream)
    position = Position(raw, point.codec, point.codec, point.offset)
    if point.format == "csv":
        record_file = resume_csv(position.text, point, RecordBuilder(options), position)
    elif point.format == "jsonl":
        record_file = resume_jsonl(position.text, point, options, position)
    else:
        raise ValueError(f"a {point.format!r} file is not read on from a byte offset")
    record_file.attach_source(raw)
    return record_file


def _detect_format(text: str, name: str) -> str:
    start = text.lstrip("\ufeff \t\r\n")
    lower = name.lower()
    for suffix in (".gz", ".gzip"):
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    if start.startswith("["):
        return "json"
    if start.startswith("{"):
        if lower.endswith((".jsonl", ".ndjson")):
            return "jsonl"
        first_line = start.split("\n", 1)[0].strip()
        try:
            first = json.loads(first_line)
        except json.JSONDecodeError:
            return "json"  # a pretty-printed document, or one line longer than the sample
        except (RecursionError, ValueError):
            # Too deep or a number too long: a line is its own reject, and an element of a
            # document its own (the API body on one line: see holds_records).
            return "json" if holds_records(first_line) else "jsonl"
        return "json" if isinstance(first, dict) and is_wrapper(first) else "jsonl"
    return "csv"
