"""Cold start: import time of each Lambda handler module beside ``import boto3``, fresh processes.

A Lambda cold start pays for the handler module's imports before the first event. Each module is
imported in a fresh interpreter (``sys.executable -c``), timed with ``time.perf_counter`` around the
import only (interpreter start-up excluded), a few times after one warm-up run (which writes the
``.pyc`` files, as a deployed package would already have them or write them once); the median
counts. ``import boto3`` is measured the same way in the same run, so the ratio does not depend on
the machine. ``cold_import_ratio`` is the larger handler/boto3 ratio: at most 2.5, aim for 1.5
(import what a cold start needs, defer the rest).

``python -m bik_local.bench cold_start`` prints it as one JSON line; ``run()`` returns the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

HANDLERS = {"ingest": "bik_sync.handlers.ingest", "upsert": "bik_sync.handlers.upsert"}
BASELINE = "boto3"
RUNS = 7
TARGET_RATIO = 2.5
AIM_RATIO = 1.5
TOP_IMPORTS = 5

_TIMER = (
    "import importlib, sys, time\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - started)\n"
)

# What Lambda and the template set (AWS_LAMBDA_FUNCTION_NAME makes Powertools behave as on Lambda,
# e.g. the Tracer patches boto3; LAMBDA_TASK_ROOT makes the X-Ray SDK take Lambda's sampling instead of
# building two botocore X-Ray clients for its own, as it does anywhere else). No value reaches AWS:
# nothing is called at import.
_LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bik-sync-cold-start-bench",
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "bik-sync",
    "POWERTOOLS_METRICS_NAMESPACE": "BikSync",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}


class ImportFailed(RuntimeError):
    """The module cannot be imported in a fresh process (the message holds its last error line)."""


def _environment() -> dict[str, str]:
    env = {**os.environ, **_LAMBDA_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def _import_seconds(module: str, env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _TIMER, module],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ImportFailed(lines[-1] if lines else f"exit status {done.returncode}")
    return float(done.stdout.strip().splitlines()[-1])


def median_import_ms(
    modules: list[str], runs: int = RUNS, env: dict[str, str] | None = None
) -> dict[str, float]:
    """Median import time of each module in ``runs`` fresh processes, after one warm-up, in ms.

    Rounds interleave the modules, so a burst of load on the machine touches them all alike.
    Raises ``ImportFailed`` for a module that cannot be imported.
    """
    env = _environment() if env is None else env
    samples: dict[str, list[float]] = {}
    for module in modules:
        _import_seconds(module, env)
        samples[module] = []
    for _ in range(runs):
        for module in samples:
            samples[module].append(_import_seconds(module, env))
    return {module: statistics.median(times) * 1000.0 for module, times in samples.items()}


def heaviest_imports(
    module: str, env: dict[str, str] | None = None, top: int = TOP_IMPORTS
) -> list[list[Any]]:
    """The modules with the largest own import time (``-X importtime``), as [name, ms] pairs."""
    env = _environment() if env is None else env
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    own: list[tuple[float, str]] = []
    for line in done.stderr.splitlines():
        # "import time:   self [us] | cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        own.append((int(parts[0]) / 1000.0, parts[2].strip()))
    own.sort(reverse=True)
    return [[name, round(ms, 1)] for ms, name in own[:top]]


def run(runs: int = RUNS) -> dict[str, Any]:
    env = _environment()
    figures: dict[str, Any] = {"bench": "cold_start", "runs": runs}
    errors: dict[str, str] = {}
    importable = [BASELINE]
    for name, module in HANDLERS.items():
        try:
            _import_seconds(module, env)
        except ImportFailed as exc:
            errors[name] = f"{module}: {exc}"
        else:
            importable.append(module)
    medians = median_import_ms(importable, runs, env)
    baseline_ms = medians[BASELINE]
    figures[f"{BASELINE}_import_ms"] = round(baseline_ms, 1)
    ratios: dict[str, float] = {}
    for name, module in HANDLERS.items():
        if module not in medians:
            figures[f"{name}_import_ms"] = None
            continue
        ratios[name] = medians[module] / baseline_ms
        figures[f"{name}_import_ms"] = round(medians[module], 1)
        figures[f"{name}_ratio"] = round(ratios[name], 2)
    worst = max(ratios, key=lambda name: ratios[name]) if ratios else None
    figures["cold_import_ratio"] = round(ratios[worst], 2) if worst else None
    figures["target_ratio"] = TARGET_RATIO
    figures["aim_ratio"] = AIM_RATIO
    if worst:
        figures["within_target"] = ratios[worst] <= TARGET_RATIO and not errors
        figures["heaviest_imports"] = {worst: heaviest_imports(HANDLERS[worst], env)}
    if errors:
        figures["errors"] = errors
    return figures


if __name__ == "__main__":
    print(json.dumps(run()))
