"""Pass 1's spill: the rows it built come back to pass 2 as they were, its end and damage with them,
and an ingest through it sends, rejects and reports what an ingest reading the file twice does."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bik_sync.clock import Deadline
from bik_sync.ingest import ingest_object
from bik_sync.messages import encode_record
from bik_sync.reading import reopen_records
from bik_sync.records import Row, UnreadableFile
from bik_sync.records.formats import open_records
from bik_sync.s3_events import S3ObjectRef
from bik_sync.spill import EncodedRow, Spill
from tests.unit.test_worker import BUCKET, World

CSV = (
    "First Name,Last Name,Email,Phone\n"
    "Asha,Rao,asha@example.in,9820000001\n"
    "Ravi,Das,not-an-email,\n"  # a reject
    "Mina,Sen,,98200 00003\n"
    "\n"  # a blank line: no row
    "Kiran,Rao,kiran@example.in,\n"
)


def test_a_spill_has_no_name_in_its_folder_so_a_dead_invocation_leaves_no_data_behind(tmp_path: Path) -> None:
    # Given a spill in a folder, pass 1 under way
    record_file = open_records(io.BytesIO(CSV.encode()), "people.csv")
    spill = Spill(str(tmp_path))
    next(spill.keep(record_file, iter(record_file)))
    # Then the folder lists nothing (the file is unlinked: it goes with the process)
    assert list(tmp_path.iterdir()) == []
    spill.close()


def spilled(data: bytes, name: str = "people.csv", **spill_args: Any) -> tuple[list[Row], Spill]:
    """The rows pass 1 reads (kept in a spill on the way), and the spill."""
    record_file = open_records(io.BytesIO(data), name)
    spill = Spill(**spill_args)
    return list(spill.keep(record_file, iter(record_file))), spill


def test_the_rows_pass_one_read_come_back_valid_ones_encoded_and_rejects_whole() -> None:
    # Given a file's rows read through a spill: three valid, one reject
    rows, spill = spilled(CSV.encode())
    # When pass 2 reads the spill
    again = list(spill)
    spill.close()
    # Then each valid row is its number and the bytes its work message will hold, the reject the row
    assert [row.number for row in again] == [row.number for row in rows] == [2, 3, 4, 6]
    for first, second in zip(rows, again, strict=True):
        if first.record is None:
            assert second == first
        else:
            assert second == EncodedRow(first.number, encode_record(first.record))
    reject = again[1]
    assert isinstance(reject, Row) and reject.errors and reject.source == ["Ravi", "Das", "not-an-email", ""]


def test_damage_pass_one_met_is_met_again_after_the_same_rows() -> None:
    # Given a file whose quote is left open on its last row, after two rows
    data = (CSV + 'Dev,"Rao\nmore,rows,here,0\n' * 2).encode()
    record_file = open_records(io.BytesIO(data), "damaged.csv")
    spill = Spill()
    first: list[Row] = []
    with pytest.raises(UnreadableFile) as met:
        first.extend(spill.keep(record_file, iter(record_file)))
    # When pass 2 reads the spill
    again: list[Any] = []
    with pytest.raises(UnreadableFile) as met_again:
        again.extend(spill)
    spill.close()
    # Then it gives the same rows, then the same damage
    assert [row.number for row in again] == [row.number for row in first] == [2, 3, 4, 6]
    assert str(met_again.value) == str(met.value) and "unclosed quote" in str(met.value)


def test_a_spill_over_its_bound_is_given_up_and_its_file_deleted() -> None:
    # Given a spill whose bound holds one row
    _, spill = spilled(CSV.encode(), max_bytes=80)
    # Then pass 2 cannot read from it (it reads the file again), and nothing is left on disk
    assert not spill.usable
    with pytest.raises(RuntimeError):
        list(spill)


def test_a_first_pass_that_stopped_before_the_end_leaves_no_spill_to_read() -> None:
    # Given a pass 1 that read two rows of four, then stopped (its time was up)
    record_file = open_records(io.BytesIO(CSV.encode()), "people.csv")
    spill = Spill()
    rows = spill.keep(record_file, iter(record_file))
    next(rows), next(rows)
    # Then its spill is not read: it does not hold the rest of the file
    assert not spill.usable
    spill.close()


def _ingest(data: bytes, key: str, spill_bytes: int | None) -> tuple[list[str], list[str], dict[str, Any]]:
    world = World()
    world.ingest = replace(world.ingest, spill_bytes=spill_bytes)
    world.objects.put_bytes(BUCKET, key, data, "application/octet-stream")
    ingest_object(S3ObjectRef(bucket=BUCKET, key=key), world.ingest)
    rejects = [world.objects.text(BUCKET, k) for k in world.objects.keys(BUCKET, "rejects/")]
    for n, body in enumerate(world.queue.bodies):
        world.deliver(f"m-{n}", body)
    report = world.report(f"reports/{key}.json")
    for moment in ("started_at", "finished_at", "ingest_finished_at", "delivery_finished_at"):
        report.pop(moment, None)
    return world.queue.bodies, rejects, report


_PEOPLE_TWICE = (
    "First Name,Last Name,Email,Phone,City\n"
    "Asha,Rao,,9820000001,\n"
    "Ravi,Das,ravi@example.in,,Kochi\n"
    "Asha,Iyer,asha@example.in,9820000001,Mumbai\n"
    "Ravi,Das,,,\n"  # a reject: no identity
    "Ravi,Das,ravi@example.in,9820000002,Delhi\n"
)
_JSON_LINES = "\n".join(
    [
        json.dumps({"first_name": "Asha", "last_name": "Rao", "email": "asha@example.in", "n": 10**30}),
        json.dumps({"first_name": "Ravi", "last_name": "Das", "email": "bad"}),
        json.dumps({"first_name": "Asha", "last_name": "Rao", "email": "asha@example.in", "city": "Pune"}),
        '{"first_name": "Mina", "last_name"',  # cut short: damage
    ]
)


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("incoming/people-twice.csv", _PEOPLE_TWICE.encode()),
        ("incoming/people.jsonl", _JSON_LINES.encode()),
        ("incoming/damaged.csv", (CSV + 'Dev,"Rao\nmore,rows,here,0\n' * 2).encode()),
    ],
)
def test_an_ingest_sending_from_the_spill_sends_rejects_and_reports_what_reading_twice_does(
    key: str, data: bytes
) -> None:
    # Given the same file ingested with room for pass 1's spill, and with none (pass 2 reads it again)
    through_spill = _ingest(data, key, None)
    read_twice = _ingest(data, key, 0)
    # Then the work messages, the rejects and the report are the same
    assert through_spill == read_twice
    assert through_spill[0] and through_spill[2]["status"] in ("complete", "incomplete")


def test_a_second_pass_from_the_spill_cut_short_by_time_reports_only_the_keys_its_rows_met(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given JSON lines whose rows from 1,501 on hold a key that maps to nothing, ingested without a
    # continue queue by invocations whose time is up as pass 2 starts (from the spill, or the file)
    lines = [
        json.dumps(
            {
                "first_name": f"P{i}",
                "last_name": "Q",
                "email": f"p{i}@example.in",
                **({"late": 1} if i > 1500 else {}),
            }
        )
        for i in range(1, 2001)
    ]
    data = ("\n".join(lines) + "\n").encode()
    time_left = [900.0]

    def spilled_with_time_up(spill: Spill) -> Iterator[Any]:
        time_left[0] = 0.0
        return spilled_rows(spill)

    def reopened_with_time_up(*args: Any) -> Any:
        time_left[0] = 0.0
        return reopen(*args)

    spilled_rows, reopen = Spill.__iter__, reopen_records
    monkeypatch.setattr(Spill, "__iter__", spilled_with_time_up)
    monkeypatch.setattr("bik_sync.ingest.reopen_records", reopened_with_time_up)
    details = []
    for spill_bytes in (None, 0):
        time_left[0] = 900.0
        world = World()
        world.ingest = replace(world.ingest, spill_bytes=spill_bytes)
        world.objects.put_bytes(BUCKET, "incoming/late.jsonl", data, "application/x-ndjson")
        ingest_object(
            S3ObjectRef(bucket=BUCKET, key="incoming/late.jsonl"),
            world.ingest,
            Deadline(lambda: time_left[0]),
        )
        (item,) = world.jobs.items.values()
        details.append(item["details"])
    # Then both stop before row 1,000, and neither names the key of rows it never read
    through_spill, read_twice = details
    assert through_spill["error"].startswith("stopped before row 1000")
    assert through_spill == read_twice
    assert through_spill["ignored_columns"] == []
