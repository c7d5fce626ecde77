"""Benchmarks: every module here with a ``run() -> dict`` is one benchmark (`make bench`)."""

import os

# What template.yaml gives the functions, and Powertools reads (bik_sync.observability): set before
# any benchmark imports bik_sync, so that the metrics it emits have their namespace.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bik-sync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BikSync")
