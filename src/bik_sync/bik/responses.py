"""Reading BIK's answers: a 200's verdict on each record (reconciled with its counts), a refusal's
message, and ``Retry-After``. Pure functions of the bytes received."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bik_sync.bik.matching import MAX_REASON_CHARS, Placement, match_rejections, reason_text
from bik_sync.observability import logger


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a 200 says BIK did with the records sent.

    ``created + updated + len(rejected) + len(unmatched) == len(records)`` always holds: BIK's
    counts are reconciled with the rejects (a shortfall, e.g. two rows of one person in a batch,
    counts as updated). ``rejected`` holds ``(index into the records sent, BIK's message)``;
    ``unmatched`` the messages of entries that matched none of them (reported, never dropped,
    each standing for one record sent that is then not counted as created or updated).
    """

    created: int
    updated: int
    rejected: list[tuple[int, str]]
    unmatched: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BatchResult:
    """A :class:`Verdict` plus what it cost: ``attempts`` requests, of which ``retries`` were retries."""

    created: int
    updated: int
    rejected: list[tuple[int, str]]
    attempts: int
    retries: int
    unmatched: list[str] = field(default_factory=list)


def parse_success(data: bytes, records: Sequence[Mapping[str, Any]]) -> Verdict | None:
    """The verdict in a 200 body, or None when the body is not BIK's success JSON."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") not in (200, "200", True):
        return None
    payload = body.get("data") or {}
    if not isinstance(payload, dict):
        return None
    invalid = payload.get("invalidUserProperties") or []
    bulk = payload.get("bulkUpsertUPResponse") or {}
    if not isinstance(invalid, list) or not isinstance(bulk, dict):
        return None
    failed_docs = bulk.get("docsFailedToUpdate") or []
    if not isinstance(failed_docs, list):
        failed_docs = [failed_docs]
    found = match_rejections(records, invalid, default_reason="rejected by BIK")
    found += match_rejections(
        records,
        failed_docs,
        default_reason="BIK could not update this record",
        claimed={index for index, _ in found if index is not None},
    )
    rejected, unmatched = one_per_record(found, len(records))
    accepted = len(records) - len(rejected) - len(unmatched)
    created, updated = reconcile(accepted, count(bulk.get("createCount")), count(bulk.get("updateCount")))
    return Verdict(created, updated, rejected, unmatched)


def one_per_record(found: Sequence[Placement], sent: int) -> tuple[list[tuple[int, str]], list[str]]:
    """(one reject per record, its reasons joined; the unmatched reasons, no more than records left).

    Every reason BIK gave is kept in the text, so nothing is dropped, while the rejects and the
    unmatched entries together never outnumber the records sent: each stands for one of them.
    """
    reasons: dict[int, list[str]] = {}
    unplaced: list[str] = []
    for index, reason in found:
        if index is None:
            unplaced.append(reason)
        else:
            reasons.setdefault(index, []).append(reason)
    rejected = [(index, "; ".join(texts)) for index, texts in reasons.items()]
    room = sent - len(rejected)
    if not unplaced:
        return rejected, []
    if room > 0:
        unmatched = unplaced[:room]
        if len(unplaced) > room:
            unmatched[-1] = "; ".join(unplaced[room - 1 :])
        return rejected, unmatched
    if rejected:  # every record sent is rejected already: the reasons go with the last reject's text
        index, reason = rejected[-1]
        rejected[-1] = (index, "; ".join([reason, *unplaced]))
        return rejected, []
    return rejected, unplaced  # nothing was sent, yet BIK reported problems: keep them all


def count(value: object) -> int:
    """One of BIK's counts as a non-negative int (0 for anything that is not a count)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def reconcile(accepted: int, created: int, updated: int) -> tuple[int, int]:
    """Make created + updated equal the records BIK did not reject, so every record is counted once."""
    if created + updated == accepted:
        return created, updated
    logger.warning(
        "BIK's counts disagree with the records it accepted; reconciling",
        accepted=accepted,
        create_count=created,
        update_count=updated,
    )
    if created + updated < accepted:
        # e.g. two rows of the same person in one batch: one create, the other an update of it.
        return created, accepted - created
    created = min(created, accepted)
    return created, accepted - created


def error_message(data: bytes, status: int) -> str:
    """BIK's own words for a refused batch (its JSON ``message``/``error``), else a short excerpt."""
    text = data.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("message", "error", "errors", "details"):
            if body.get(key):
                return reason_text(body[key])[:MAX_REASON_CHARS]
    stripped = text.strip()
    return stripped[:MAX_REASON_CHARS] if stripped else f"BIK answered {status}"


def parse_retry_after(raw: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds
