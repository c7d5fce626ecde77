"""Resuming a work message from the progress an earlier receive saved: only for the very same records."""

from __future__ import annotations

from bik_sync.delivery import DeliveryProgress
from bik_sync.jobs import BatchStatus
from bik_sync.upsert import records_digest, resume_progress

RECORDS = [{"firstName": "A", "lastName": "B", "email": f"p{i}@example.in"} for i in range(4)]
SAVED = DeliveryProgress(settled=frozenset({0, 1}), created=2)


def test_progress_saved_for_the_same_records_is_resumed() -> None:
    status = BatchStatus(False, records_digest(RECORDS), SAVED.to_json())
    assert resume_progress(status, records_digest(RECORDS), len(RECORDS)) == SAVED


def test_progress_saved_for_other_records_is_ignored() -> None:
    # Given progress saved when the batch held other records (a record has changed since)
    changed = [*RECORDS[:3], {**RECORDS[3], "email": "other@example.in"}]
    status = BatchStatus(False, records_digest(RECORDS), SAVED.to_json())
    # Then every record is sent again
    assert records_digest(changed) != records_digest(RECORDS)
    assert resume_progress(status, records_digest(changed), len(changed)) == DeliveryProgress()


def test_unreadable_or_ill_fitting_progress_is_ignored() -> None:
    digest = records_digest(RECORDS)
    assert resume_progress(BatchStatus(False, digest, "not json"), digest, 4) == DeliveryProgress()
    too_far = DeliveryProgress(settled=frozenset({7})).to_json()
    assert resume_progress(BatchStatus(False, digest, too_far), digest, 4) == DeliveryProgress()


def test_no_saved_progress_means_a_fresh_start() -> None:
    assert resume_progress(BatchStatus(counted=False), records_digest(RECORDS), 4).pending(4) == [0, 1, 2, 3]


def test_a_record_bik_cannot_encode_still_has_a_digest() -> None:
    # A lone surrogate passes the checks but not UTF-8: delivery rejects that record alone, so the
    # digest must not fail on it first.
    odd = [*RECORDS, {"firstName": "\ud800", "lastName": "B", "email": "odd@example.in"}]
    assert records_digest(odd) != records_digest(RECORDS)
