"""The one place that builds Logger, Metrics and Tracer.

Powertools reads the service name and the metrics namespace from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (and its other settings from POWERTOOLS_* too): template.yaml sets them
for both functions, the local stack sets the same values, so changing the template changes them.
Log counts, ids and reasons, never phones, emails, names or the token.
"""

from __future__ import annotations

import logging
import threading

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
# On Lambda (Tracing: Active, POWERTOOLS_TRACE_DISABLED unset) the Tracer is on and patches what it is
# told: the AWS SDK, as both functions call AWS through boto3. Left to itself it would import an
# X-Ray patch for each of the thirteen libraries it knows at every cold start, to find two there
# (botocore, and sqlite3, which neither function uses). Locally it is off.
TRACED_LIBRARIES = ("botocore",)
tracer = Tracer(patch_modules=TRACED_LIBRARIES)

# Powertools' metric set is a plain dict that flushes itself at 100 values, and the worker adds to
# it from several delivery threads at once: every add goes through this lock.
_METRICS_LOCK = threading.Lock()
_METRICS_ON = threading.Event()
_METRICS_ON.set()


def add_metric(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add a metric value, safely from any thread."""
    if not _METRICS_ON.is_set():
        return
    with _METRICS_LOCK:
        metrics.add_metric(name=name, unit=unit, value=value)


def quiet_for_terminal() -> None:
    """The laptop commands own stdout and stderr: no JSON log lines, no EMF metric blobs there.

    (The Lambdas' logs and metrics go to stdout, which CloudWatch reads; a person's terminal is not it.)
    """
    logger.setLevel(logging.CRITICAL)
    _METRICS_ON.clear()
