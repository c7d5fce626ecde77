"""Matching the entries BIK echoes back (invalid or not updated) to the records that were sent.

BIK's echo may differ from what was sent (a reformatted phone, an upper-cased email, a field
dropped), so entries are placed by identity first and then by position. An entry that cannot be
placed is returned with the index ``None``: a real index is never made up for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bik_sync.records.fields import IDENTITY_FIELDS

# The most specific identity is tried first: a partner's own id names one customer for sure, a
# phone or an email may have been shared or recycled.
MATCH_ORDER: Final[tuple[str, ...]] = (
    "partnerCustomerId",
    *(field for field in IDENTITY_FIELDS if field != "partnerCustomerId"),
)
# Keys BIK adds to an echoed record; they say nothing about which record it was.
_NOT_A_FIELD: Final = frozenset({"error", "storeId", "customerId"})
MAX_REASON_CHARS: Final = 500

#: (index into the records sent, or None when the entry matches none of them; BIK's reason)
Placement = tuple[int | None, str]
_Index = dict[str, dict[str, list[int]]]


def match_rejections(
    records: Sequence[Mapping[str, Any]],
    entries: Sequence[object],
    *,
    default_reason: str,
    claimed: set[int] | None = None,
) -> list[Placement]:
    """Map each entry BIK reported back to an index into ``records``, with its reason.

    First by normalised identity (partnerCustomerId, then phone digits, then email case-folded).
    Then by position: BIK echoes entries in the order they were sent, so an entry left over lies
    between the records its identity-matched neighbours point at. Within that window, when there
    are as many free records as leftover entries they pair up in order; otherwise each leftover
    takes the free record sharing the most field values with it. An entry that still cannot be
    placed gets the index None, never dropped. No record is matched twice (``claimed`` are taken).
    """
    if not entries:
        return []
    taken: set[int] = set(claimed or ())
    parsed = [_entry_fields(entry, default_reason) for entry in entries]
    fields = [entry_fields for entry_fields, _ in parsed]
    matched, repeats = _match_identities(entries, fields, _identity_index(records), taken)
    _match_positions(records, fields, matched, repeats, taken)
    for position, again in repeats.items():
        matched[position] = again  # a second problem for one record: the caller merges the reasons
    return [(found, reason) for found, (_, reason) in zip(matched, parsed, strict=True)]


def reason_text(value: object) -> str:
    """BIK's reason as one line of text, whatever shape it came in (text, Joi details, a list)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("message") or value.get("details")
        return reason_text(inner) if inner else json.dumps(value, default=str)[:MAX_REASON_CHARS]
    if isinstance(value, list):
        return "; ".join(reason_text(item) for item in value)
    return str(value)


# -- by identity ------------------------------------------------------------------------------------


def _match_identities(
    entries: Sequence[object], fields: Sequence[Mapping[str, Any]], index: _Index, taken: set[int]
) -> tuple[list[int | None], dict[int, int]]:
    """Per entry, a free record with its identity (or None), and the entries whose identity names a
    record already taken (entry position -> that record)."""
    matched: list[int | None] = []
    repeats: dict[int, int] = {}
    for position, (entry, entry_fields) in enumerate(zip(entries, fields, strict=True)):
        found, already = _match_identity(entry, entry_fields, index, taken)
        if found is not None:
            taken.add(found)
        elif already is not None:
            repeats[position] = already
        matched.append(found)
    return matched, repeats


def _identity_index(records: Sequence[Mapping[str, Any]]) -> _Index:
    index: _Index = {key: {} for key in MATCH_ORDER}
    for i, record in enumerate(records):
        for key in MATCH_ORDER:
            value = _norm(key, record.get(key))
            if value is not None:
                index[key].setdefault(value, []).append(i)
    return index


def _match_identity(
    entry: object, fields: Mapping[str, Any], index: _Index, taken: set[int]
) -> tuple[int | None, int | None]:
    """(a free record with this identity, else None; a record already taken with it, else None)."""
    already: int | None = None
    for key in MATCH_ORDER:
        raw = fields.get(key) if fields else entry  # a bare value: try it as every kind of identity
        if isinstance(raw, Mapping):
            continue
        value = _norm(key, raw)
        if value is None:
            continue
        for i in index[key].get(value, ()):
            if i not in taken:
                return i, None
            if already is None:
                already = i
    return None, already


# -- by position ------------------------------------------------------------------------------------


def _match_positions(
    records: Sequence[Mapping[str, Any]],
    fields: Sequence[Mapping[str, Any]],
    matched: list[int | None],
    repeats: Mapping[int, int],
    taken: set[int],
) -> None:
    """Place the entries identity left over, in ``matched``, within the windows their neighbours mark."""
    for (low, high), positions in _windows(matched, repeats, len(records)).items():
        candidates = [i for i in range(low + 1, high) if i not in taken]
        if len(candidates) == len(positions):
            pairs = list(zip(positions, candidates, strict=True))
        else:
            pairs = _pair_by_similarity(records, fields, positions, candidates, taken)
        for position, choice in pairs:
            matched[position] = choice
            taken.add(choice)


def _windows(
    matched: Sequence[int | None], repeats: Mapping[int, int], sent: int
) -> dict[tuple[int, int], list[int]]:
    """Leftover entry positions grouped by the open interval (low, high) of records they must lie in."""
    windows: dict[tuple[int, int], list[int]] = {}
    for position, found in enumerate(matched):
        if found is None and position not in repeats:
            low = max((m for m in matched[:position] if m is not None), default=-1)
            high = min((m for m in matched[position + 1 :] if m is not None), default=sent)
            if low >= high:  # BIK's order is not ours here: look everywhere
                low, high = -1, sent
            windows.setdefault((low, high), []).append(position)
    return windows


def _pair_by_similarity(
    records: Sequence[Mapping[str, Any]],
    fields: Sequence[Mapping[str, Any]],
    positions: Sequence[int],
    candidates: Sequence[int],
    taken: set[int],
) -> list[tuple[int, int]]:
    """Each entry takes the free candidate sharing the most field values with it (none if none do)."""
    pairs: list[tuple[int, int]] = []
    for position in positions:
        free = [i for i in candidates if i not in taken]
        scored = [(_similarity(fields[position], records[i]), i) for i in free]
        best = max((score for score, _ in scored), default=0)
        if best > 0:
            choice = next(i for score, i in scored if score == best)
            taken.add(choice)
            pairs.append((position, choice))
    return pairs


# -- fields -----------------------------------------------------------------------------------------


def _entry_fields(entry: object, default_reason: str) -> tuple[Mapping[str, Any], str]:
    if isinstance(entry, Mapping):
        reason = reason_text(
            entry.get("error") or entry.get("message") or entry.get("reason") or default_reason
        )
        for nested in ("doc", "record", "userProperty"):
            inner = entry.get(nested)
            if isinstance(inner, Mapping):
                return {**inner, **{k: v for k, v in entry.items() if k != nested}}, reason
        return entry, reason
    return {}, default_reason


def _norm(key: str, value: object) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    if not text:
        return None
    if key == "phoneNumber":
        digits = re.sub(r"\D", "", text)
        return digits[-10:] if digits else None
    return text.casefold()


def _similarity(echoed: Mapping[str, Any], sent: Mapping[str, Any]) -> int:
    score = 0
    for key, value in echoed.items():
        if key in _NOT_A_FIELD or key not in sent:
            continue
        a, b = _norm(key, value), _norm(key, sent[key])
        if a is not None and a == b:
            score += 1
    return score
