"""A file too large for one invocation, through the local stack: IngestFunction's time runs out at its
twentieth look at the clock (BIK_LOCAL_INGEST_CLOCK_CHECKS; it looks before every thousandth row), so
20,000 rows take several invocations chained by continuation messages, however fast the machine.
One report adds up, and BIK holds every valid row, each sent once; people whose rows are read by
different invocations are merged all the same, and the parts after the first read on from the byte
offset the checkpoint holds (a ranged GET of the same object)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bik_local.stack import RunningStack, launch
from tests.integration.conftest import STACK_EMULATOR_SEED, STACK_ENV, User

ROWS = 20_000
# Looks at the clock an invocation gets: one for its finishing margin, one before each thousandth row
# (and one at each piece of the file read while no row is, as when a part skips rows pass 1 read).
# Each pass over the 20,000 rows looks 20 times: neither fits in one invocation, on any machine.
CLOCK_CHECKS = 20
# Rows of one person far apart, so that different invocations send them (index: the line's values).
PEOPLE = {
    7: "Ravi,Das,ravi@example.in,Kochi",
    101: "Asha,Rao,asha@example.in,Pune",
    9_001: "Asha,Iyer,asha@example.in,Mumbai",
    15_003: "Ravi,Das,ravi@example.in,Delhi",
    19_901: "Asha,Iyer,asha@example.in,",  # no city: Mumbai stays
}
DUPLICATES = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of this module's own, whose IngestFunction invocations each read under 20,000 rows."""
    log: Path = tmp_path_factory.mktemp("continuation-stack") / "stack.log"
    running = launch(
        log,
        env={**STACK_ENV, "BIK_LOCAL_INGEST_CLOCK_CHECKS": str(CLOCK_CHECKS)},
        emulator_seed=STACK_EMULATOR_SEED,
    )
    yield running
    running.stop()


def test_a_file_read_in_several_invocations_is_reported_once_and_every_valid_row_is_in_bik_once(
    user: User,
) -> None:
    # Given 20,000 rows, every fiftieth without an email (a reject), and two people of several rows each
    lines = ["First Name,Last Name,Email,City"] + [
        PEOPLE.get(i, f"F{i},L{i},{'' if i % 50 == 0 else f'p{i}@example.in'},") for i in range(ROWS)
    ]
    valid = sum(1 for i in range(ROWS) if i % 50)
    emails = {f"p{i}@example.in" for i in range(ROWS) if i % 50 and i not in PEOPLE}
    # When it is uploaded to a stack whose ingest invocations have time for under 20,000 rows
    user.upload("incoming/continued.csv", "\n".join(lines).encode())
    report = user.report("reports/incoming/continued.csv.json", timeout_s=240)
    # Then it took several invocations, and the one report adds up
    assert report["invocations"] >= 2
    assert report["status"] == "complete"
    people = valid - DUPLICATES
    assert (report["rows"], report["created"], report["rejected"]) == (ROWS, people, ROWS - valid)
    assert report["duplicates"] == DUPLICATES
    assert report["rows"] == (
        report["created"] + report["updated"] + report["rejected"] + report["failed"] + report["duplicates"]
    )
    # And every invocation that sent rows has its rejects in a part file of its own, all listed (the
    # first invocations may spend their second on the pass that finds rows of one person), and rows
    # were sent by at least two, so the people's rows were read by different ones
    assert 2 <= len(report["rejects_files"]) <= report["invocations"]
    rejected_rows = sum(len(user.text(key).splitlines()) - 1 for key in report["rejects_files"])
    assert rejected_rows == ROWS - valid
    # And the job's checkpoint says where in the object the last part read on from (a plain CSV)
    assert 0 < last_offset(user, "incoming/continued.csv") < len("\n".join(lines))
    # And BIK holds each person once, none sent twice, the people merged in file order
    user.wait_queues_idle(60)
    state = user.bik("GET", "/__emulator/state")
    assert state["users"] == state["records_received"] == people
    users = {u["email"]: u for u in user.bik("GET", "/__emulator/users")}
    assert set(users) == emails | {"asha@example.in", "ravi@example.in"}
    asha, ravi = users["asha@example.in"], users["ravi@example.in"]
    assert (asha["firstName"], asha["lastName"], asha["city"]) == ("Asha", "Iyer", "Mumbai")
    assert (ravi["lastName"], ravi["city"]) == ("Das", "Delhi")
    # And nothing carried between the invocations is left in the bucket
    assert user.keys("state/") == []


def last_offset(user: User, key: str) -> int:
    """The byte offset in the checkpoint the last part of the job on ``key`` read on from."""
    ddb = user.stack.client("dynamodb")
    pages = ddb.get_paginator("scan").paginate(
        TableName=user.stack.info["jobs_table"],
        FilterExpression="#key = :key AND attribute_exists(ingest_checkpoint)",
        ExpressionAttributeNames={"#key": "key"},
        ExpressionAttributeValues={":key": {"S": key}},
    )
    (item,) = [item for page in pages for item in page["Items"]]
    offset: int = json.loads(item["ingest_checkpoint"]["S"])["resume"]["offset"]
    return offset
