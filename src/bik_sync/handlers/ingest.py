"""IngestFunction: an S3 object in incoming/ (directly, or through SQS) becomes a job; a continuation
message (IngestContinueQueue) carries a job too large for one invocation on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bik_sync.clock import Deadline
from bik_sync.continuation import ingest_or_continue
from bik_sync.ingest import default_deps
from bik_sync.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = ingest_or_continue(event, default_deps(), Deadline.from_context(context))
    return {"jobs": [{"job_id": r.job_id, "key": r.key, "status": r.status, "rows": r.rows} for r in results]}
