"""UpsertFunction: a work-queue batch becomes BIK user properties (partial batch response)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bik_sync.observability import logger, metrics, tracer
from bik_sync.upsert import default_deps, process_work_batch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_work_batch(event, context, default_deps())
