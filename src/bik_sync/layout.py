"""Where everything lives in the bucket: the prefixes and every key format, in one place.

Files arrive under ``incoming/`` (the only prefix that triggers ingest); every output goes under
another prefix, so writing it never re-triggers ingest. An output's key starts with its input's
key, so that the outputs of one input are found by prefix.
"""

from __future__ import annotations

import time

INCOMING_PREFIX = "incoming/"
REJECTS_PREFIX = "rejects/"
REPORTS_PREFIX = "reports/"
FAILED_PREFIX = "failed/"
MAPPINGS_PREFIX = "mappings/"
# What one invocation of a file read in parts hands the next about rows of one person (merge_state.py).
STATE_PREFIX = "state/"
# Messages other systems send have no input object: their job's key is made up from the message id.
MESSAGE_KEY_PREFIX = "sqs/"


def is_input(key: str) -> bool:
    """An object ingest reads: anything under incoming/ (a name ending in "/" is looked at too: an
    empty one is a folder marker, one with data a file that needs a name)."""
    return key.startswith(INCOMING_PREFIX) and key != INCOMING_PREFIX


def message_job_key(message_id: str) -> str:
    """The stand-in input key of a job opened for one message from another system."""
    return f"{MESSAGE_KEY_PREFIX}{message_id}"


def job_run(uploaded_at: float, job_id: str) -> str:
    """The name of one job of an input: its upload time and short id (``20261201T101530Z-1a2b3c4d``).

    Uploading the same key again is another job with a name of its own, so no job's outputs ever
    replace another's.
    """
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(uploaded_at)) + "-" + job_id[:8]


def _job_base(input_key: str, run: str) -> str:
    # A message from another system is its own input (sqs/<MessageId>): its job needs no run name.
    input_key = input_key.rstrip("/")  # a key ending in "/" that holds data still gets its report
    return f"{input_key}/{run}" if run else input_key


def report_key(input_key: str, run: str = "") -> str:
    """One job's report: ``reports/<input key>/<run>.json``."""
    return f"{REPORTS_PREFIX}{_job_base(input_key, run)}.json"


def latest_report_key(input_key: str) -> str:
    """The latest job's report of an input, at the key it has always had: ``reports/<input key>.json``."""
    return f"{REPORTS_PREFIX}{input_key.rstrip('/')}.json"


def ingest_rejects_key(input_key: str, run: str, extension: str, part: int = 0) -> str:
    """The rows ingest rejected, in the input's own format (``extension`` such as ``.csv``).

    A file read in several invocations has one rejects file per part that rejected any row:
    ``.rejects-part-0001.csv``, ``.rejects-part-0002.csv``, ...
    """
    suffix = f"-part-{part:04d}" if part else ""
    return f"{REJECTS_PREFIX}{_job_base(input_key, run)}.rejects{suffix}{extension}"


def batch_rejects_key(input_key: str, run: str, batch: int) -> str:
    """Records of one batch the worker or BIK rejected (JSON lines)."""
    return f"{REJECTS_PREFIX}{_job_base(input_key, run)}.rejects-{batch:05d}.jsonl"


def batch_failed_key(input_key: str, run: str, batch: int) -> str:
    """Records of one batch that could not be delivered (JSON lines, re-uploadable)."""
    return f"{FAILED_PREFIX}{_job_base(input_key, run)}.failed-{batch:05d}.jsonl"


def duplicates_state_key(input_key: str, run: str, part: int, digest: str) -> str:
    """The rows of one person that part ``part`` of a job hands the next: named by its SHA-256 too,
    so that no write (a retried part's, a stale invocation's) ever replaces the object a stored
    checkpoint names."""
    return f"{STATE_PREFIX}{_job_base(input_key, run)}.duplicates-part-{part:04d}-{digest[:16]}.bin"


def malformed_key(message_id: str) -> str:
    """A work message that can never be processed, with the reason."""
    return f"{REJECTS_PREFIX}{MESSAGE_KEY_PREFIX}{message_id}.malformed.json"


def rejects_prefix(input_key: str, run: str = "") -> str:
    """The prefix under which every rejects file of one job is found."""
    return f"{REJECTS_PREFIX}{_job_base(input_key, run)}."


def failed_prefix(input_key: str, run: str = "") -> str:
    """The prefix under which every failed-delivery file of one job is found."""
    return f"{FAILED_PREFIX}{_job_base(input_key, run)}."


def folder_mapping_keys(input_key: str) -> list[str]:
    """The mapping files an input's folders may have, nearest first.

    ``incoming/hubspot/2024/x.csv`` -> ``mappings/hubspot/2024.json``, ``mappings/hubspot.json``.
    """
    folders = input_key.removeprefix(INCOMING_PREFIX).split("/")[:-1]
    return [
        f"{MAPPINGS_PREFIX}{'/'.join(folders[:depth])}.json"
        for depth in range(len(folders), 0, -1)
        if all(folders[:depth])
    ]
