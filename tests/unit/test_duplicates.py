"""Rows of one person in one file: merged in file order, sent once at the last row, memory bounded."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bik_sync import duplicates
from bik_sync.duplicates import DuplicateMerger, IdentityIndex, merge_into
from bik_sync.records import Row, UnreadableFile


def row(number: int, **record: Any) -> Row:
    return Row(number=number, source=None, record={"firstName": "F", "lastName": "L", **record}, errors=())


def rejected(number: int) -> Row:
    return Row(number=number, source=None, record=None, errors=('"lastName" is required',))


def replay(rows: list[Row], merger: DuplicateMerger | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Pass 1 over the rows, then pass 2 as the send loop runs it: what would be sent, in order."""
    merger = merger or DuplicateMerger.from_rows(rows)
    sent: list[tuple[int, dict[str, Any]]] = []
    for r in rows:
        if r.record is not None:
            sent.extend(merger.feed(r.number, r.record))
    sent.extend(merger.flush())
    return sent


def test_later_non_empty_values_win_and_empty_ones_never_erase_when_records_are_merged() -> None:
    # Given a person's record and a later one with a new city, an empty state and no email
    merged = {"firstName": "Asha", "city": "Pune", "state": "MH", "email": "a@x.in", "tags": ["a"]}
    # When the later one is merged in
    merge_into(merged, {"firstName": "Asha", "city": "Mumbai", "state": "", "tags": [], "address1": None})
    # Then the new city wins, and the empty state, empty tags and missing email leave what was there
    assert merged == {"firstName": "Asha", "city": "Mumbai", "state": "MH", "email": "a@x.in", "tags": ["a"]}


def test_a_later_rows_tags_replace_the_earlier_ones_as_bik_would_when_both_have_tags() -> None:
    # Given two rows of one person with different tags
    rows = [row(2, email="a@x.in", tags=["vip", "2025"]), row(3, email="a@x.in", tags=["newsletter"])]
    # When they are replayed
    [(number, record)] = replay(rows)
    # Then the later list wins, as BIK's field-by-field upsert would leave it
    assert (number, record["tags"]) == (3, ["newsletter"])


def test_rows_linked_through_other_rows_are_one_person_when_identities_chain() -> None:
    # Given A and B sharing a phone, B and C sharing an email, and an unrelated D between them
    rows = [
        row(2, phoneNumber="+919800000001", city="Pune"),
        row(3, email="d@x.in"),
        row(4, phoneNumber="+919800000001", email="c@x.in", state="MH"),
        row(5, email="c@x.in", partnerCustomerId="77", city="Delhi"),
    ]
    # When they are replayed
    sent = replay(rows)
    # Then D is sent as it is at its row, and A, B, C once, merged, at C's row
    assert sent == [
        (3, {"firstName": "F", "lastName": "L", "email": "d@x.in"}),
        (
            5,
            {
                "firstName": "F",
                "lastName": "L",
                "phoneNumber": "+919800000001",
                "email": "c@x.in",
                "state": "MH",
                "partnerCustomerId": "77",
                "city": "Delhi",
            },
        ),
    ]


def test_an_identity_value_matches_only_the_same_field_when_a_phone_equals_an_id() -> None:
    # Given one row whose customer id is another row's phone, as text
    rows = [row(2, partnerCustomerId="+919800000001"), row(3, phoneNumber="+919800000001")]
    # When they are replayed, then they are two people
    assert [number for number, _ in replay(rows)] == [2, 3]


def test_three_rows_of_one_person_far_apart_are_sent_once_at_the_last_rows_position() -> None:
    # Given 300 rows where rows 2, 150 and 301 are one person (three different batches of 100)
    rows = [row(n, email=f"p{n}@x.in") for n in range(2, 302)]
    rows[0] = row(2, email="same@x.in", city="Pune")
    rows[148] = row(150, email="same@x.in", state="MH")
    rows[299] = row(301, email="same@x.in", city="Delhi")
    merger = DuplicateMerger.from_rows(rows)
    # When they are replayed
    sent = replay(rows, merger)
    # Then the person is one record, sent once, where row 301 stands, with every row's latest values
    theirs = [(n, r) for n, r in sent if r["email"] == "same@x.in"]
    assert theirs == [
        (301, {"firstName": "F", "lastName": "L", "email": "same@x.in", "city": "Delhi", "state": "MH"})
    ]
    assert [n for n, _ in sent] == [n for n in range(2, 302) if n not in (2, 150)]
    assert (merger.duplicates, merger.held, len(sent)) == (2, 0, 298)


def test_rejected_rows_are_never_merged_when_they_share_an_identity() -> None:
    # Given a valid row, a rejected row of the same person (the core gave no record), a valid one
    rows = [row(2, email="a@x.in", city="Pune"), rejected(3), row(4, email="b@x.in")]
    # When they are replayed, then both valid rows are sent as they are
    assert [n for n, _ in replay(rows)] == [2, 4]


def test_an_open_group_is_sent_at_its_latest_row_read_when_reading_stops_early() -> None:
    # Given a person at rows 2, 3 and 9, and the second pass stopping after row 5
    rows = [row(2, email="a@x.in", city="Pune"), row(3, email="a@x.in", state="MH"), row(5, email="b@x.in")]
    merger = DuplicateMerger.from_rows([*rows, row(9, email="a@x.in", city="Delhi")])
    for r in rows:
        assert r.record is not None
        merger.feed(r.number, r.record)
    # When the merger is flushed
    flushed = merger.flush()
    # Then what was read of the person is sent at row 3, once, and one row counts as merged
    assert flushed == (
        (3, {"firstName": "F", "lastName": "L", "email": "a@x.in", "city": "Pune", "state": "MH"}),
    )
    assert (merger.duplicates, merger.held, merger.flush()) == (1, 0, ())


def test_the_first_pass_indexes_the_rows_read_before_the_damage_when_a_file_is_cut_short() -> None:
    # Given rows of which the reader fails after the second
    def damaged() -> Iterator[Row]:
        yield row(2, email="a@x.in")
        yield row(3, email="a@x.in")
        raise UnreadableFile("the file ends in the middle of a record")

    # When it is indexed, then the two rows read are one person
    merger = DuplicateMerger.from_rows(damaged())
    assert (merger.groups.count, merger.groups.duplicates) == (1, 1)


def test_the_first_pass_stops_when_told_to_and_keeps_what_it_read() -> None:
    # Given 3000 rows whose first and last are one person, and a first pass told to stop at row 1000
    rows = [row(n, email="same@x.in" if n in (1, 3000) else f"p{n}@x.in") for n in range(1, 3001)]
    asked: list[int] = []

    def keep_going() -> bool:
        asked.append(1)
        return False

    merger = DuplicateMerger.from_rows(rows, keep_going=keep_going)
    # Then it asked once, and did not see the person's second row
    assert (len(asked), merger.groups.count) == (1, 0)


def test_unique_rows_are_never_held_and_their_index_is_on_disk_when_a_file_is_large(tmp_path: Path) -> None:
    # Given 100,000 rows of 100,000 people, each with three identities
    def rows() -> Iterator[Row]:
        for n in range(2, 100_002):
            yield row(
                n, email=f"p{n}@x.in", phoneNumber=f"+9198{n:08d}", partnerCustomerId=str(n), city="Pune"
            )

    index = IdentityIndex(str(tmp_path))
    try:
        # When they are indexed (pass 1) and fed (pass 2)
        for r in rows():
            assert r.record is not None
            index.add(r.number, r.record)
        on_disk = index.bytes_on_disk
        in_folder = list(tmp_path.iterdir())
        merger = DuplicateMerger(index.groups())
        sent = 0
        for r in rows():
            assert r.record is not None
            sent += len(merger.feed(r.number, r.record))
            assert merger.held == 0
    finally:
        index.close()
    # Then every row is sent as it is, nothing is held (no group, no record), and the 300,000 hashes
    # are in the file on disk
    assert (sent, merger.duplicates, merger.groups.count, len(merger.groups.rows)) == (100_000, 0, 0, 0)
    assert on_disk > 300_000 * 8
    # And the index file has no name in the folder, even while open: a dead invocation leaves nothing
    assert in_folder == [] and list(tmp_path.iterdir()) == []


def _old_hash(name: str, value: Any) -> int:
    """The identity hash as pass 1 has always computed it (and stored it in carried indexes)."""
    digest = hashlib.blake2b(f"{name}:{value}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _crossing_records() -> list[tuple[int, dict[str, Any]]]:
    """25,000 rows whose phones, emails and ids repeat at different strides (long chains of people
    crossing each other), some rows with one identity, a non-text id, an email with a lone
    surrogate, and one email on every 1,000th row."""
    records = []
    for n in range(2, 25_002):
        record: dict[str, Any] = {"phoneNumber": f"+9198{n % 7919:08d}"}
        if n % 5:
            record["email"] = f"p{n % 10_007}@x.in"
        if n % 3 == 0:
            record["partnerCustomerId"] = str(n % 12_007) if n % 2 else n % 12_007
        if n % 11 == 0:
            record = {"email": f"only{n}@x.in"}
        if n % 1_000 == 0:
            record["email"] = "many@x.in"
        if n % 4_001 == 0:
            record["email"] = f"p\udc80{n % 2}@x.in"
        records.append((n, record))
    return records


def _plain_union_find(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """Each row that shares a hash with another row -> the first row of its group."""
    rows_of: dict[int, list[int]] = {}
    for h, n in pairs:
        rows_of.setdefault(h, []).append(n)
    parent: dict[int, int] = {}

    def root(n: int) -> int:
        while parent.get(n, n) != n:
            n = parent[n]
        return n

    for linked in rows_of.values():
        for other in linked[1:]:
            a, b = root(linked[0]), root(other)
            parent[max(a, b)] = min(a, b)
    return {n: root(n) for n in sorted({n for linked in rows_of.values() if len(linked) > 1 for n in linked})}


@pytest.mark.parametrize(
    ("block_pairs", "partition_pairs", "carried"),
    [
        pytest.param(None, None, 0, id="in-one-block"),
        # Blocks of 1,000 pairs, partitions split twice over, the first 9,000 rows from an earlier part
        pytest.param(1_000, 20, 9_000, id="many-blocks-split-partitions-carried"),
    ],
)
def test_pass_1_gives_the_groups_and_stored_hashes_of_a_plain_union_find_when_many_chains_cross(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    block_pairs: int | None,
    partition_pairs: int | None,
    carried: int,
) -> None:
    # Given rows of many crossing chains, and what a plain union-find over the old hashes gives
    records = _crossing_records()
    pairs = [
        (_old_hash(name, record[name]), n)
        for n, record in records
        for name in ("phoneNumber", "email", "partnerCustomerId")
        if record.get(name) not in (None, "")
    ]
    first_row = _plain_union_find(pairs)
    # And an index that writes a block every `block_pairs` pairs and splits partitions of more than
    # `partition_pairs` (by default: 2 MiB and 131,072)
    if block_pairs:
        monkeypatch.setattr(duplicates, "_FLUSH_BYTES", 16 * block_pairs)
    if partition_pairs:
        monkeypatch.setattr(duplicates, "_PART_PAIRS", partition_pairs)
    index = IdentityIndex(str(tmp_path))
    try:
        # When pass 1 indexes them, the first `carried` rows in an earlier part whose index is dumped
        # and loaded (as merge_state carries it)
        earlier = IdentityIndex(str(tmp_path))
        for n, record in records[:carried]:
            earlier.add(n, record)
        for flat in earlier.dump():
            index.load(array("q", flat))
        earlier.close()
        for n, record in records[carried:]:
            index.add(n, record)
        dumped = [pair for flat in index.dump() for pair in zip(flat[::2], flat[1::2], strict=True)]
        count = index.pairs
        groups = index.groups()
    finally:
        index.close()
    # Then the index holds the old hashes, in the order added (a carried index stays readable)
    assert dumped == pairs and count == len(pairs)
    # And the groups are the plain union-find's: same rows, same group of each, same last row
    assert list(groups.rows) == list(first_row)
    assert [groups.rows[g] for g in groups.group] == list(first_row.values())
    last = {first: n for n, first in first_row.items()}
    assert [groups.last[g] for g in groups.group] == [last[first] for first in first_row.values()]
    assert 100 < groups.count < len(first_row)
    # And every file of the index is gone once closed
    assert list(tmp_path.iterdir()) == []


def test_the_groups_are_in_row_order_when_rows_are_indexed_out_of_order(tmp_path: Path) -> None:
    # Given rows of one person indexed last row first, and another person's rows between
    index = IdentityIndex(str(tmp_path))
    try:
        for n, email in ((9, "a@x.in"), (7, "b@x.in"), (4, "a@x.in"), (5, "b@x.in"), (2, "a@x.in")):
            index.add(n, {"email": email})
        # When the groups are found
        groups = index.groups()
    finally:
        index.close()
    # Then the rows are in row order, each with its group's first row, and each group's last row
    assert (list(groups.rows), [groups.rows[g] for g in groups.group]) == ([2, 4, 5, 7, 9], [2, 2, 5, 5, 2])
    assert (groups.last[groups.group_of(2) or 0], groups.is_last(groups.group_of(5) or 0, 7)) == (9, True)
