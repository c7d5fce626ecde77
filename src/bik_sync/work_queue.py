"""SQS: the :class:`~bik_sync.ports.WorkQueue` adapter. The client is passed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bik_sync.ports import QueueEntry

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsWorkQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send_batch(self, entries: Sequence[QueueEntry]) -> set[str]:
        response = self._sqs.send_message_batch(
            QueueUrl=self._url, Entries=[{"Id": entry.id, "MessageBody": entry.body} for entry in entries]
        )
        return {failure["Id"] for failure in response.get("Failed", [])}
