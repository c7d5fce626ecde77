"""The one place that builds Logger, Metrics and Tracer.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE where set (the template sets them), with these defaults otherwise.
Log counts, ids and reasons, never phones, emails, names or the token.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "bik-sync"
NAMESPACE = "BikSync"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
