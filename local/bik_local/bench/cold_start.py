"""Cold start: import time of each Lambda handler module beside ``import boto3``, as the Lambda has it.

A Lambda cold start pays for the handler module's imports before the first event, with only the
deployed dependencies installed. So the imports run in a venv that holds only src/requirements.txt
(what ``sam build`` packages), with the package's src on PYTHONPATH and the environment variables
Lambda and the template set. The venv is built once under ``.bench/`` and reused while
src/requirements.txt is unchanged (it is keyed by the file's hash and the Python version).

Each module is imported in a fresh interpreter, timed around the import only (interpreter start-up
excluded), in several rounds after one warm-up run (which writes the ``.pyc`` files, as a deployed
package would already have them or write them once). Each round imports ``import boto3`` first and
then every handler; a handler's ratio is the median over rounds of its time over that round's
boto3, so it depends neither on the machine nor much on its speed drifting. The ratio is of CPU time
(``time.process_time``): an import is CPU-bound once the files are in the page cache, and on this
shared 2-core machine the wall clock mostly measures the other processes (the wall-clock ratio is
printed beside it). ``cold_import_ratio`` is the larger of the two; target at most 1.5.

phonenumbers is imported when the first phone is read (``records/phones.py``), not by a handler's
import, so a cold start does not pay for it; a unit test keeps it so.

``python -m bik_local.bench cold_start`` prints it as one JSON line; ``run()`` returns the figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src"
REQUIREMENTS = SRC / "requirements.txt"
CACHE = ROOT / ".bench"
HANDLERS = {"ingest": "bik_sync.handlers.ingest", "upsert": "bik_sync.handlers.upsert"}
BASELINE = "boto3"
RUNS = 9
TARGET_RATIO = 1.5
TOP_IMPORTS = 8

# argv: the module. Prints "wall_s cpu_s" of the import alone.
_TIMER = (
    "import importlib, sys, time\n"
    "wall, cpu = time.perf_counter(), time.process_time()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - wall, time.process_time() - cpu)\n"
)

# What Lambda and the template set (AWS_LAMBDA_FUNCTION_NAME makes Powertools behave as on Lambda;
# LAMBDA_TASK_ROOT turns the Tracer on, as POWERTOOLS_TRACE_DISABLED is unset there, and makes the
# X-Ray SDK take Lambda's sampling). No value reaches AWS: nothing is called at import.
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
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
}
# Set here or by a test runner, none of these is set on Lambda.
_NOT_ON_LAMBDA = (
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "POWERTOOLS_TRACE_DISABLED",
    "AWS_SAM_LOCAL",
    "VIRTUAL_ENV",
)


class ImportFailed(RuntimeError):
    """The module cannot be imported in a fresh process (the message holds its last error line)."""


def lambda_venv(requirements: Path = REQUIREMENTS, cache: Path = CACHE) -> Path:
    """The python of a venv holding only ``requirements``: built once, reused while the file is unchanged."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = cache / f"lambda-{version}-{key}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    if done.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)  # a build that stopped half-way
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    built = subprocess.run(
        [*install, "--disable-pip-version-check", "-r", str(requirements)], capture_output=True, text=True
    )
    if built.returncode != 0:
        raise RuntimeError(f"pip could not install {requirements}: {built.stderr.strip()[-2000:]}")
    done.write_text(requirements.read_text())
    return python


def lambda_environment(src: Path = SRC) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _NOT_ON_LAMBDA}
    env.update(_LAMBDA_ENV)
    env["PYTHONPATH"] = str(src)  # the package as sam build lays it out, nothing else
    return env


Sample = tuple[float, float]  # (wall, CPU) seconds of one import


def _import_seconds(python: Path, module: str, env: dict[str, str]) -> Sample:
    done = subprocess.run(
        [str(python), "-s", "-c", _TIMER, module],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ImportFailed(lines[-1] if lines else f"exit status {done.returncode}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def import_rounds(python: Path, cases: list[str], runs: int, env: dict[str, str]) -> dict[str, list[Sample]]:
    """(wall, CPU) import seconds of each case in ``runs`` rounds of fresh processes, one warm-up each first.

    Each round runs every case once, the baseline first, so a burst of load or a change of the
    machine's speed touches a round's cases alike. Raises ``ImportFailed`` for a module that fails.
    """
    samples: dict[str, list[Sample]] = {}
    for case in cases:
        _import_seconds(python, case, env)
        samples[case] = []
    for _ in range(runs):
        for case in samples:
            samples[case].append(_import_seconds(python, case, env))
    return samples


def _loaded_by(python: Path, module: str, env: dict[str, str]) -> set[str]:
    probe = f"import sys; before = set(sys.modules); import {module}; print(*set(sys.modules) - before)"
    done = subprocess.run(
        [str(python), "-s", "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def heaviest_imports(
    python: Path, module: str, env: dict[str, str], top: int = TOP_IMPORTS
) -> list[list[Any]]:
    """The modules ``module`` adds to ``import boto3`` with the largest own import time, as [name, ms].

    From ``-X importtime`` (its own figures, in one process: a pointer, not the measure).
    """
    baseline = _loaded_by(python, BASELINE, env)
    done = subprocess.run(
        [str(python), "-s", "-X", "importtime", "-c", f"import {BASELINE}; import {module}"],
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
        if len(parts) != 3 or not parts[0].strip().isdigit() or parts[2].strip() in baseline:
            continue
        own.append((int(parts[0]) / 1000.0, parts[2].strip()))
    own.sort(reverse=True)
    return [[name, round(ms, 1)] for ms, name in own[:top]]


def _ratios(samples: dict[str, list[Sample]], figures: dict[str, Any]) -> dict[str, float]:
    """Each handler's median CPU ms, and the median over rounds of its ratio to that round's boto3."""
    baseline = samples[BASELINE]
    ratios: dict[str, float] = {}
    for name, module in HANDLERS.items():
        if module not in samples:
            figures[f"{name}_import_ms"] = None
            continue
        times = samples[module]
        ratios[name] = statistics.median(
            cpu / base for (_, cpu), (_, base) in zip(times, baseline, strict=True)
        )
        wall = statistics.median(wall / base for (wall, _), (base, _) in zip(times, baseline, strict=True))
        figures[f"{name}_import_ms"] = round(statistics.median(cpu for _, cpu in times) * 1000, 1)
        figures[f"{name}_ratio"] = round(ratios[name], 2)
        figures[f"{name}_wall_ratio"] = round(wall, 2)
    return ratios


def run(runs: int = RUNS, src: Path = SRC) -> dict[str, Any]:
    """The figures for the package in ``src`` (another checkout's src measures the code before)."""
    python = lambda_venv()
    env = lambda_environment(src)
    figures: dict[str, Any] = {"bench": "cold_start", "runs": runs, "python": python.parent.parent.name}
    errors: dict[str, str] = {}
    importable = [BASELINE]
    for name, module in HANDLERS.items():
        try:
            _import_seconds(python, module, env)
        except ImportFailed as exc:
            errors[name] = f"{module}: {exc}"
        else:
            importable.append(module)
    samples = import_rounds(python, importable, runs, env)
    figures[f"{BASELINE}_import_ms"] = round(statistics.median(cpu for _, cpu in samples[BASELINE]) * 1000, 1)
    figures[f"{BASELINE}_wall_ms"] = round(statistics.median(wall for wall, _ in samples[BASELINE]) * 1000, 1)
    ratios = _ratios(samples, figures)
    worst = max(ratios, key=lambda name: ratios[name]) if ratios else None
    figures["cold_import_ratio"] = round(ratios[worst], 2) if worst else None
    figures["target_ratio"] = TARGET_RATIO
    if worst:
        figures["within_target"] = ratios[worst] <= TARGET_RATIO and not errors
        figures["heaviest_imports"] = {
            name: heaviest_imports(python, HANDLERS[name], env) for name in HANDLERS if name in ratios
        }
    if errors:
        figures["errors"] = errors
    return figures


if __name__ == "__main__":
    # python -m bik_local.bench.cold_start [SRC]: SRC another checkout's src, to measure the code before
    print(json.dumps(run(src=Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else SRC)))
