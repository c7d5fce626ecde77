"""The batching rule: at most N records and B bytes of API body, counted as the body is built."""

from __future__ import annotations

import pytest

from bik_sync.batching import BODY_OVERHEAD, BatchPacker
from bik_sync.bik import encode_body, encode_record
from tests.unit.test_delivery import planned


def test_a_batch_filled_to_the_cap_is_a_body_of_exactly_the_cap() -> None:
    # Given records whose body, three at a time, is exactly the cap
    records = [{"email": f"p{i}@example.in"} for i in range(6)]
    size = len(encode_record(records[0]))
    cap = BODY_OVERHEAD + 3 * size + 2
    # When they are planned into batches
    batches = planned(records, batch_size=100, max_batch_bytes=cap)
    # Then each batch holds three, and its body is exactly the cap
    assert batches == [[0, 1, 2], [3, 4, 5]]
    assert len(encode_body(records[:3])) == cap


def test_a_record_larger_than_the_cap_gets_a_batch_of_its_own() -> None:
    packer = BatchPacker(max_records=10, max_bytes=1024)
    assert [packer.add(size) for size in (10, 5000, 10)] == [False, True, True]


def test_a_batch_closes_at_the_record_count_whatever_its_bytes() -> None:
    packer = BatchPacker(max_records=2, max_bytes=200_000)
    assert [packer.add(10) for _ in range(5)] == [False, False, True, False, True]


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        BatchPacker(max_records=0, max_bytes=1024)
