"""A file too large for one invocation, through the local stack: IngestFunction's time is cut to a
second (BIK_LOCAL_INGEST_TIMEOUT_S), so 20,000 rows take several invocations chained by continuation
messages. One report adds up, and BIK holds every valid row, each sent once; the parts after the
first read on from the byte offset the checkpoint holds (a ranged GET of the same object)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bik_local.stack import RunningStack, launch
from tests.integration.conftest import STACK_EMULATOR_SEED, STACK_ENV, User

ROWS = 20_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of this module's own, whose IngestFunction has a second per invocation."""
    log: Path = tmp_path_factory.mktemp("continuation-stack") / "stack.log"
    running = launch(
        log, env={**STACK_ENV, "BIK_LOCAL_INGEST_TIMEOUT_S": "1"}, emulator_seed=STACK_EMULATOR_SEED
    )
    yield running
    running.stop()


def test_a_file_read_in_several_invocations_is_reported_once_and_every_valid_row_is_in_bik_once(
    user: User,
) -> None:
    # Given 20,000 rows, every fiftieth without an email (a reject)
    lines = ["First Name,Last Name,Email"] + [
        f"F{i},L{i},{'' if i % 50 == 0 else f'p{i}@example.in'}" for i in range(ROWS)
    ]
    valid = sum(1 for i in range(ROWS) if i % 50)
    # When it is uploaded to a stack whose ingest invocations last a second
    user.upload("incoming/continued.csv", "\n".join(lines).encode())
    report = user.report("reports/incoming/continued.csv.json", timeout_s=240)
    # Then it took several invocations, and the one report adds up
    assert report["invocations"] >= 2
    assert report["status"] == "complete"
    assert (report["rows"], report["created"], report["rejected"]) == (ROWS, valid, ROWS - valid)
    assert report["rows"] == report["created"] + report["updated"] + report["rejected"] + report["failed"]
    # And every invocation's rejects are in a part file of its own, all listed
    # One rejects part file for each invocation that read rows (the first may spend its second on the
    # pass that finds rows of one person)
    assert report["invocations"] - 1 <= len(report["rejects_files"]) <= report["invocations"]
    rejected_rows = sum(len(user.text(key).splitlines()) - 1 for key in report["rejects_files"])
    assert rejected_rows == ROWS - valid
    # And the job's checkpoint says where in the object the last part read on from (a plain CSV)
    assert 0 < last_offset(user, "incoming/continued.csv") < len("\n".join(lines))
    # And BIK holds exactly the valid rows, none of them sent twice
    user.wait_queues_idle(60)
    state = user.bik("GET", "/__emulator/state")
    assert state["users"] == state["records_received"] == valid
    emails = {u["email"] for u in user.bik("GET", "/__emulator/users")}
    assert emails == {f"p{i}@example.in" for i in range(ROWS) if i % 50}


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
