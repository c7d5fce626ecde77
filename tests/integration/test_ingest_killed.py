"""An ingest killed part way (a real SIGKILL, as Lambda ends an invocation out of memory or time)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from bik_local.stack import FAKE_CREDENTIALS, RunningStack
from bik_sync.ingest import IngestDeps, JobBusy, ingest_deps, ingest_object
from bik_sync.s3_events import S3ObjectRef
from bik_sync.settings import IngestSettings
from tests.integration.conftest import User

pytestmark = pytest.mark.integration

BUCKET = "bik-sync-killed-ingest"
KEY = "incoming/killed.csv"
LEASE_S = 3.0  # the deployed lease is 30 s; a test waits for a short one

_CHILD = """
import dataclasses, json, sys
from bik_sync.ingest import ingest_deps, ingest_object
from bik_sync.s3_events import S3ObjectRef
from bik_sync.settings import IngestSettings
from bik_local.stack import aws_client
info = json.loads(sys.argv[1])
client = lambda name: aws_client(name, info["endpoint_url"])
settings = IngestSettings(
    work_queue_url=info["work_queue_url"], jobs_table_name=info["jobs_table"],
    job_signing_secret_id=info["signing_secret_arn"],
)
deps = ingest_deps(settings, s3=client("s3"), sqs=client("sqs"), dynamodb=client("dynamodb"),
                   secretsmanager=client("secretsmanager"))
deps = dataclasses.replace(deps, lease_s=float(sys.argv[2]))
ingest_object(S3ObjectRef(bucket=sys.argv[3], key=sys.argv[4]), deps)
"""


def _job_item(stack: RunningStack) -> dict[str, Any] | None:
    items = stack.client("dynamodb").scan(TableName=stack.info["jobs_table"])["Items"]
    found = [item for item in items if item.get("key", {}).get("S") == KEY]
    return found[0] if found else None


def test_a_killed_ingests_lease_expires_and_the_retry_finishes_the_job_counting_each_row_once(
    stack: RunningStack, user: User
) -> None:
    # Given a 30,000-row file, and an ingest that is killed (SIGKILL) while it reads it
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    rows = [f"F{n},L{n},killed{n}@example.in" for n in range(30_000)]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=("First Name,Last Name,Email\n" + "\n".join(rows)).encode())
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(stack.info), str(LEASE_S), BUCKET, KEY],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _job_item(stack) is None:
        time.sleep(0.05)
    time.sleep(0.5)  # part way through its rows
    child.send_signal(signal.SIGKILL)
    child.wait()
    item = _job_item(stack)
    assert item is not None and not item["ingest_done"]["BOOL"], "the ingest finished before it was killed"
    deps = dataclasses_replace_lease(stack)
    ref = S3ObjectRef(bucket=BUCKET, key=KEY)
    # When Lambda's retry comes at once, the dead ingest's lease is still live: the retry waits
    with pytest.raises(JobBusy):
        ingest_object(ref, deps)
    # And when it comes after the lease (3 s here, 30 s deployed: before Lambda's first retry at ~1 min)
    time.sleep(LEASE_S + 1.5)
    result = ingest_object(ref, deps)
    # Then the job runs to its end, and the report counts every row once, though some batches were sent twice
    assert (result.status, result.rows) == ("queued", 30_000)
    body = stack.wait_for_object(f"reports/{KEY}.json", 240, bucket=BUCKET)
    assert body is not None
    report = json.loads(body)
    assert (report["rows"], report["created"] + report["updated"], report["failed"]) == (30_000, 30_000, 0)
    assert report["status"] == "complete"


def dataclasses_replace_lease(stack: RunningStack) -> IngestDeps:
    import dataclasses

    info = stack.info
    settings = IngestSettings(
        work_queue_url=info["work_queue_url"],
        jobs_table_name=info["jobs_table"],
        job_signing_secret_id=info["signing_secret_arn"],
    )
    deps = ingest_deps(
        settings,
        s3=stack.client("s3"),
        sqs=stack.client("sqs"),
        dynamodb=stack.client("dynamodb"),
        secretsmanager=stack.client("secretsmanager"),
    )
    return dataclasses.replace(deps, lease_s=LEASE_S)


def test_the_deployed_lease_expires_before_lambdas_first_retry_and_is_renewed_while_reading() -> None:
    # Lambda retries an asynchronous invocation about a minute after it failed
    lease = IngestDeps.__dataclass_fields__["lease_s"].default
    assert isinstance(lease, float) and lease < 60
