"""The local stack's resources, declared once.

Names mirror template.yaml's logical resources (the comment beside each); the local stack creates
them from here and the tests read them from here, so the two cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class LocalResources:
    bucket: str = "bik-sync-local-data"  # DataBucket
    work_queue: str = "bik-sync-work"  # WorkQueue
    dead_letter_queue: str = "bik-sync-work-dlq"  # WorkDeadLetterQueue
    jobs_table: str = "bik-sync-jobs"  # JobsTable
    secret: str = "bik-sync/bik-api-token"  # noqa: S105 - the secret's name, not a value. BikSecret
    signing_secret: str = "bik-sync/job-signing-key"  # noqa: S105 - a name. JobSigningSecret
    # Local only: on AWS the bucket invokes IngestFunction directly; locally its notifications go
    # to this queue and the poller turns each one into the S3 event Lambda would receive.
    s3_events_queue: str = "bik-sync-s3-events"
    s3_events_dead_letter_queue: str = "bik-sync-s3-events-dlq"  # Lambda's async retries: 2, then give up
    ingest_continue_queue: str = "bik-sync-ingest-continue"  # IngestContinueQueue
    ingest_continue_dead_letter_queue: str = "bik-sync-ingest-continue-dlq"  # IngestContinueDeadLetterQueue
    max_receive_count: int = 5  # WorkQueue RedrivePolicy.maxReceiveCount


RESOURCES = LocalResources()
