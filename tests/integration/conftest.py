"""The local stack for integration tests: moto's server, the BIK emulator and the pollers, started
once per session as a subprocess, exactly as `make demo` runs it. Tests act as users do: they put
objects and send messages with boto3 over HTTP, then read the reports the stack writes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from bik_local.emulator import Emulator, start_emulator
from bik_local.stack import RunningStack, launch

# Fast-failing delivery settings so fault tests finish in seconds; the stack passes BIK_* through.
# The last allowed receive comes sooner than on AWS (3, not 5): failed/ is reached in seconds. Six
# attempts a receive make a record's chance of failing all 18 tries in the storm test (42% of
# requests faulty) about 2 in 10^7, so that test can demand every record in BIK.
# The secret cache outlives the session, so a test that rotates the token surely meets a 401 first.
STACK_ENV = {
    "BIK_SECRET_MAX_AGE_S": "3600",
    "BIK_READ_TIMEOUT_S": "2",
    "BIK_CONNECT_TIMEOUT_S": "1",
    "BIK_MAX_ATTEMPTS": "6",
    "BIK_MAX_RECEIVE_COUNT": "3",
}


STACK_EMULATOR_SEED = 7


@pytest.fixture(scope="module")
def emulator_server(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A BIK emulator of the module's own, seeded (EMULATOR_SEED in the module) so faults repeat."""
    with start_emulator(seed=getattr(request.module, "EMULATOR_SEED", 7)) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    emulator_server.reset()
    return emulator_server


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    # Seeded, so the random faults a test asks for are the same draws on every run (reset re-seeds).
    running = launch(log, env=STACK_ENV, emulator_seed=STACK_EMULATOR_SEED)
    yield running
    running.stop()


class User:
    """What a person with the AWS CLI and the emulator's inspection endpoint can do."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")
        self.bucket = stack.info["bucket"]

    def upload(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def report(self, key: str, timeout_s: float = 60.0) -> dict[str, Any]:
        body = self.stack.wait_for_object(key, timeout_s)
        assert body is not None, f"no {key} within {timeout_s}s; see {self.stack.log_path}"
        document: dict[str, Any] = json.loads(body)
        return document

    def text(self, key: str) -> str:
        return str(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8-sig"))

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def send(self, body: str) -> str:
        message_id: str = self.sqs.send_message(QueueUrl=self.stack.info["work_queue_url"], MessageBody=body)[
            "MessageId"
        ]
        return message_id

    def bik(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = urllib3.request(method, self.stack.info["bik_base_url"] + path, json=body, timeout=10.0)
        assert response.status == 200, response.data
        return response.json()

    def wait_queues_idle(self, timeout_s: float = 30.0) -> None:
        """Until no message is waiting or in flight on the S3-events, continuation and work queues."""
        deadline = time.monotonic() + timeout_s
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        while time.monotonic() < deadline:
            busy = 0
            queues = ("s3_events_queue_url", "ingest_continue_queue_url", "work_queue_url")
            for url in (self.stack.info[name] for name in queues):
                attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
                busy += sum(int(attrs[n]) for n in names)
            if not busy:
                return
            time.sleep(0.3)
        raise AssertionError("queues still busy")


@pytest.fixture
def user(stack: RunningStack) -> Iterator[User]:
    person = User(stack)
    person.wait_queues_idle(60)  # each test starts from a quiet stack: no stragglers from the last one
    person.bik("POST", "/__emulator/reset")
    yield person
    person.bik("POST", "/__emulator/reset")
