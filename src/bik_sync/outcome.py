"""What a job came to, in one word, and why, in a few: shared by the Lambdas' reports and the CLI's.

``status`` is one of:

- ``unreadable``: the input could not be read at all (the report's ``error`` says why);
- ``incomplete``: reading stopped part way (``error`` says where); what was read is accounted for;
- ``failed``: records could not be delivered and none reached BIK (BIK down, credentials refused);
- ``partial``: some records reached BIK, others could not be delivered (``failed`` > 0);
- ``complete``: every row read is in BIK or in a rejects file with its reason.

``reasons`` counts why rows were rejected or records failed, the most common first, with
positions taken out (``userProperties[7].email`` and ``userProperties[9].email`` are one reason).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

STATUSES: Final = ("complete", "partial", "failed", "incomplete", "unreadable", "replaced")
#: How many distinct reasons a report lists; the rest are counted under OTHER_REASONS.
MAX_REASONS: Final = 20
OTHER_REASONS: Final = "(other reasons)"
_MAX_REASON_CHARS: Final = 300
_POSITIONS: Final = re.compile(r"\[\d+\]")


def job_status(*, read_status: str, delivered: int, failed: int) -> str:
    """``read_status``: what reading the input said (``complete``, ``incomplete``, ``unreadable``)."""
    if read_status in ("unreadable", "incomplete"):
        return read_status
    if failed == 0:
        return "complete"
    return "failed" if delivered == 0 else "partial"


def reason_key(reason: str) -> str:
    """One reason for many rows: positions out, cut to a readable length."""
    text = _POSITIONS.sub("[i]", reason.strip())
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 3] + "..."


class ReasonTally:
    """Counts reasons as rows are read, in bounded memory: past ``limit`` distinct reasons (a file
    can make each row's reason unique), new ones are counted as OTHER_REASONS."""

    __slots__ = ("_limit", "counts")

    def __init__(self, limit: int = 1000) -> None:
        self.counts: Counter[str] = Counter()
        self._limit = limit

    def add(self, reasons: Iterable[str]) -> None:
        counts = self.counts
        for reason in reasons:
            key = reason_key(reason)
            if key in counts or len(counts) < self._limit:
                counts[key] += 1
            else:
                counts[OTHER_REASONS] += 1


def summarise_reasons(counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> dict[str, int]:
    """The most common reasons first, at most MAX_REASONS of them and the rest as OTHER_REASONS."""
    tally: Counter[str] = Counter()
    for reason, count in counts.items() if isinstance(counts, Mapping) else counts:
        tally[reason_key(reason)] += int(count)
    top = tally.most_common(MAX_REASONS)
    summary = dict(top)
    rest = sum(tally.values()) - sum(summary.values())
    if rest:
        summary[OTHER_REASONS] = summary.get(OTHER_REASONS, 0) + rest
    return summary
