"""The request body BIK expects, built from pieces whose sizes the caller can add up before sending."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

BODY_PREFIX = b'{"userProperties":['
BODY_SUFFIX = b"]}"


def encode_record(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_body(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The request body: prefix + the records joined by commas + suffix (so its size is computable)."""
    return BODY_PREFIX + b",".join(encode_record(r) for r in records) + BODY_SUFFIX
