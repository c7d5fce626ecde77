"""The status and reasons every report (Lambda or CLI) gives."""

from __future__ import annotations

import pytest

from bik_sync.outcome import MAX_REASONS, OTHER_REASONS, job_status, reason_key, summarise_reasons


@pytest.mark.parametrize(
    ("read_status", "delivered", "failed", "expected"),
    [
        ("complete", 10, 0, "complete"),
        ("complete", 0, 0, "complete"),  # every row rejected: each is in a rejects file with its reason
        ("complete", 7, 3, "partial"),
        ("complete", 0, 10, "failed"),
        ("incomplete", 5, 0, "incomplete"),
        ("unreadable", 0, 0, "unreadable"),
    ],
)
def test_the_status_says_what_the_job_came_to(
    read_status: str, delivered: int, failed: int, expected: str
) -> None:
    assert job_status(read_status=read_status, delivered=delivered, failed=failed) == expected


def test_reasons_lose_their_positions_and_are_counted_together() -> None:
    summary = summarise_reasons(
        {
            '"userProperties[7].email" must be a valid email': 2,
            '"userProperties[12].email" must be a valid email': 3,
        }
    )
    assert summary == {'"userProperties[i].email" must be a valid email': 5}
    assert reason_key("x" * 1000).endswith("...") and len(reason_key("x" * 1000)) == 300


def test_a_report_lists_the_most_common_reasons_and_counts_the_rest_together() -> None:
    counts = {f"reason {n}": n for n in range(1, MAX_REASONS + 6)}
    summary = summarise_reasons(counts)
    assert list(summary)[:2] == [f"reason {MAX_REASONS + 5}", f"reason {MAX_REASONS + 4}"]
    assert len(summary) == MAX_REASONS + 1
    assert sum(summary.values()) == sum(counts.values())
    assert summary[OTHER_REASONS] == sum(range(1, 6))
