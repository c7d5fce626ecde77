"""Stand-in for Lambda's event sources: queue messages become the events AWS would send.

S3 notifications (which the bucket sends to a local queue) are handed to the ingest handler as the
S3 event itself; work-queue messages are handed to the upsert handler as an SQS event of up to ten
records, and only the messages the partial batch response does not name are deleted, as Lambda's
event source mapping does. A handler that raises never stops the poller: its messages simply come
back after the visibility timeout, up to the queue's redrive limit.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger("bik_local.poller")


@dataclass
class LambdaContext:
    """The attributes Powertools and our code read from Lambda's context object.

    ``clock_checks``: when above 0, the time left is counted in the handler's looks at it instead
    of seconds: the whole timeout until its ``clock_checks``-th look, which finds none left (and so
    do the later ones). What an invocation reads then depends on the file alone, not on the machine.
    """

    function_name: str
    timeout_s: float
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    clock_checks: int = 0

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s
        self._checks = 0

    def get_remaining_time_in_millis(self) -> int:
        if self.clock_checks > 0:
            self._checks += 1
            return 0 if self._checks >= self.clock_checks else int(self.timeout_s * 1000)
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class QueuePoller:
    def __init__(self, sqs: Any, queue_url: str, region: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._region = region
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            if chunk:
                self._sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                    ],
                )

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS event source mapping sends for these messages."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {
                        name: {
                            "stringValue": value.get("StringValue"),
                            "binaryValue": value.get("BinaryValue"),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value.get("DataType", "String"),
                        }
                        for name, value in m.get("MessageAttributes", {}).items()
                    },
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self._arn,
                    "awsRegion": self._region,
                }
                for m in messages
            ]
        }


def pump_s3_events(
    poller: QueuePoller, ingest: Handler, *, timeout_s: float, clock_checks: int = 0, wait_s: int = 0
) -> int:
    """One receive from the S3 notifications queue; each notification is one ingest invocation."""
    handled = 0
    for message in poller.receive(1, wait_s):
        handled += 1
        try:
            event = json.loads(message["Body"])
        except json.JSONDecodeError:
            log.error("S3 notification is not JSON; dropped")
            poller.delete([message])
            continue
        if event.get("Event") == "s3:TestEvent":
            poller.delete([message])
            continue
        try:
            ingest(event, LambdaContext("IngestFunction", timeout_s, clock_checks=clock_checks))
        except Exception as exc:
            log.error(
                "IngestFunction failed; the event will be retried: %s", type(exc).__name__, exc_info=True
            )
            continue
        poller.delete([message])
    return handled


def pump_continuations(
    poller: QueuePoller, ingest: Handler, *, timeout_s: float, clock_checks: int = 0, wait_s: int = 0
) -> int:
    """One continuation message as one ingest invocation (the event source's BatchSize is 1)."""
    messages = poller.receive(1, wait_s)
    if not messages:
        return 0
    try:
        ingest(
            poller.sqs_event(messages), LambdaContext("IngestFunction", timeout_s, clock_checks=clock_checks)
        )
    except Exception as exc:
        log.error(
            "IngestFunction failed; the continuation will be retried: %s", type(exc).__name__, exc_info=True
        )
        return len(messages)
    poller.delete(messages)
    return len(messages)


def pump_work(
    poller: QueuePoller, upsert: Handler, *, timeout_s: float, clock_checks: int = 0, wait_s: int = 0
) -> int:
    """One receive from the work queue as one upsert invocation, honouring the partial batch response."""
    messages = poller.receive(10, wait_s)
    if not messages:
        return 0
    try:
        response = upsert(
            poller.sqs_event(messages), LambdaContext("UpsertFunction", timeout_s, clock_checks=clock_checks)
        )
    except Exception as exc:
        log.error("UpsertFunction failed; the batch will be retried: %s", type(exc).__name__, exc_info=True)
        return len(messages)
    failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    poller.delete([m for m in messages if m["MessageId"] not in failed])
    return len(messages)


def run_forever(pump: Callable[[], int], stop: threading.Event, idle_s: float = 0.2) -> None:
    """Pump until stopped; short polls (the local moto answers one request at a time), with a pause
    when the queue was empty."""
    while not stop.is_set():
        try:
            if not pump():
                stop.wait(idle_s)
        except Exception as exc:  # noqa: BLE001 - the poller outlives any one failure (moto restarting, ...)
            log.error("poller error: %s", type(exc).__name__)
            stop.wait(1.0)


def _ingest_timeout_s() -> float:
    """IngestFunction's timeout (900 s), or BIK_LOCAL_INGEST_TIMEOUT_S: a short one has a test's file
    read in several invocations. Locally it only sets the time left the handler sees."""
    return float(os.environ.get("BIK_LOCAL_INGEST_TIMEOUT_S", "") or 900.0)


def _ingest_clock_checks() -> int:
    """BIK_LOCAL_INGEST_CLOCK_CHECKS (unset: 0, the wall clock): IngestFunction's time runs out at the
    handler's N-th look at it. Ingest looks once for its finishing margin, then before every
    thousandth row it reads (and at a piece of the file that held no row): a test's file is read in
    the same parts on any machine, however fast, which a timeout in seconds cannot promise."""
    return int(os.environ.get("BIK_LOCAL_INGEST_CLOCK_CHECKS", "") or 0)


FUNCTIONS = {
    # name: (handler module, pump, Lambda timeout in seconds, looks at the clock that end it or 0)
    "IngestFunction": (
        "bik_sync.handlers.ingest",
        pump_s3_events,
        _ingest_timeout_s(),
        _ingest_clock_checks(),
    ),
    "IngestContinuations": (
        "bik_sync.handlers.ingest",
        pump_continuations,
        _ingest_timeout_s(),
        _ingest_clock_checks(),
    ),
    "UpsertFunction": ("bik_sync.handlers.upsert", pump_work, 120.0, 0),
}


def main(argv: Sequence[str]) -> int:
    """One function's event source in a process of its own, as Lambda gives each function its own
    execution environment (its own Logger state, caches and clients). Runs until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bik_local.poller")
    parser.add_argument("function", choices=sorted(FUNCTIONS))
    parser.add_argument("queue_url")
    args = parser.parse_args(list(argv))
    module_name, pump, timeout_s, clock_checks = FUNCTIONS[args.function]
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    import boto3  # the stack set AWS_ENDPOINT_URL and the region in this process's environment

    parent = os.getppid()
    # Stop with the stack even if it was killed without a chance to stop us.
    threading.Thread(target=_watch_parent, args=(parent, stop), daemon=True).start()
    handler = importlib.import_module(module_name).handler
    poller = QueuePoller(boto3.client("sqs"), args.queue_url, os.environ.get("AWS_REGION", "us-east-1"))
    run_forever(lambda: pump(poller, handler, timeout_s=timeout_s, clock_checks=clock_checks), stop)
    return 0


def _watch_parent(parent: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
