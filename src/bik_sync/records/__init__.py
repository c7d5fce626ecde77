"""The record core: read, map, normalise and validate customer records as BIK would.

Pure Python (no AWS, no network); the ingest Lambda, the SQS worker and ``bik-sync validate``
all go through it, so they cannot disagree about a record.

The readers (``formats``: ``open_records``, ``resume_records``) are imported from their module: the
worker checks records it did not read, and its cold start does not import them.
"""

from bik_sync.records.errors import UnreadableFile
from bik_sync.records.fields import API_FIELDS, IDENTITY_FIELDS, REQUIRED_FIELDS
from bik_sync.records.mapping import load_mapping
from bik_sync.records.options import ReadOptions
from bik_sync.records.rejects import JsonlRejectsWriter, RejectsWriter, guard_cell
from bik_sync.records.rows import RecordFile, ResumePoint, Row
from bik_sync.records.validate import check_record

__all__ = [
    "API_FIELDS",
    "IDENTITY_FIELDS",
    "REQUIRED_FIELDS",
    "JsonlRejectsWriter",
    "ReadOptions",
    "RecordFile",
    "RejectsWriter",
    "ResumePoint",
    "Row",
    "UnreadableFile",
    "check_record",
    "guard_cell",
    "load_mapping",
]
