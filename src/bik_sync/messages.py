"""The work-queue message format: the BIK API body, plus optional job metadata.

``{"userProperties": [...], "job": {"id", "bucket", "key", "batch", "rows"}}``. Any system can
send the API body alone; a bare JSON array of records or a single record object is accepted too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bik_sync import jsonbytes, signing
from bik_sync.bik import BODY_PREFIX, encode_record

__all__ = [
    "JobMeta",
    "MalformedMessage",
    "WorkMessage",
    "build_work_message",
    "encode_record",
    "parse_work_message",
]


class MalformedMessage(ValueError):
    """The message can never be processed as it is; the reason goes to the rejects file."""


@dataclass(frozen=True, slots=True)
class JobMeta:
    """Where a batch came from: the job, its output bucket and input key, its batch number and rows."""

    job_id: str
    bucket: str
    key: str
    batch: int
    rows: tuple[int, ...]
    run: str = ""  # the job's name among its input's jobs: where its output files go
    sig: str = ""  # ingest's signature of the above and the records (bik_sync.signing)

    def to_json(self) -> dict[str, Any]:
        """The fields as they travel (``sig`` only once signed)."""
        fields: dict[str, Any] = {
            "id": self.job_id,
            "bucket": self.bucket,
            "key": self.key,
            "run": self.run,
            "batch": self.batch,
            "rows": list(self.rows),
        }
        if self.sig:
            fields["sig"] = self.sig
        return fields


@dataclass(frozen=True, slots=True)
class WorkMessage:
    """A work message read back: its records, and its job (None when the sender named none)."""

    records: list[Any]
    job: JobMeta | None


def build_work_message(encoded_records: Sequence[bytes], job: JobMeta, key: bytes) -> str:
    """The API body plus the job, signed with ``key``. Records come already encoded
    (:func:`encode_record`), once: ingest measured their size with the same bytes."""
    fields = job.to_json()
    fields["sig"] = signing.signature(key, fields, signing.records_digest(encoded_records))
    job_json = jsonbytes.dumps(fields, ensure_ascii=True)
    return (BODY_PREFIX + b",".join(encoded_records) + b'],"job":' + job_json + b"}").decode()


def parse_work_message(body: str) -> WorkMessage:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(
            f"message body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedMessage("message body is nested too deep to be user properties") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise MalformedMessage("message body holds a number of more than 4,300 digits") from None
    if isinstance(payload, list):
        records: list[Any] = payload
        job = None
    elif isinstance(payload, dict) and "userProperties" in payload:
        records = payload["userProperties"]
        if not isinstance(records, list):
            raise MalformedMessage('"userProperties" must be an array')
        job = _parse_job(payload.get("job"), len(records))
    elif isinstance(payload, dict):
        records, job = [payload], None  # a single record; its fields are validated like any other
    else:
        raise MalformedMessage("message body must be a JSON object or array of user properties")
    if not records:
        raise MalformedMessage('"userProperties" is empty: nothing to upsert')
    return WorkMessage(records=records, job=job)


def _parse_job(raw: Any, count: int) -> JobMeta | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MalformedMessage('"job" must be an object')
    try:
        rows = tuple(int(n) for n in raw.get("rows", range(1, count + 1)))
        meta = JobMeta(
            job_id=str(raw["id"]),
            bucket=str(raw["bucket"]),
            key=str(raw["key"]),
            batch=int(raw["batch"]),
            rows=rows,
            run=str(raw.get("run", "")),
            sig=str(raw.get("sig", "")),
        )
    except KeyError as exc:
        raise MalformedMessage(f'"job.{exc.args[0]}" is required') from None
    except (TypeError, ValueError):
        # Say which part is wrong, never the value (it could be anything a sender put there).
        raise MalformedMessage('"job.batch" and "job.rows" must be whole numbers') from None
    if len(meta.rows) != count:
        raise MalformedMessage('"job.rows" must give one row number per record')
    return meta
