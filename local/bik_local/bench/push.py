"""`bik-sync push` throughput: the whole command on a generated CSV against the emulator, beside the bound.

Same emulator latency, requests in flight and batch size as the ``delivery`` line, so
``push_bound_ratio`` (records/s of push over ``in_flight * batch_size / latency_s``) shows what the
front door costs on top of the engine: reading the file with the record core, the journal's one
SQLite transaction per answer, the progress display and the output files. Target >= 0.8.
Timed from ``main()`` in this process (no interpreter start-up), stdout and stderr captured; the
file is written and the emulator answered once before the clock starts. ``main()`` quiets logging
and metrics for the terminal: both are put back afterwards, so that a benchmark run after this one
in the same process (``python -m bik_local.bench push delivery``) pays for them as it would alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bik_local.bench.delivery import _emulator_process, _env_int, _state
from bik_local.emulator import DEFAULT_TOKEN
from bik_sync import observability
from bik_sync.commands import push
from bik_sync.observability import logger


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("First Name,Last Name,Email,Phone,City,Tags\n")
        for n in range(rows):
            out.write(f"Bench,Customer{n},bench{n}@example.in,+9197{n:08d},Bengaluru,bench\n")


def run() -> dict[str, Any]:
    rows = _env_int("BIK_BENCH_PUSH_RECORDS", 40_000)
    latency_ms = _env_int("BIK_BENCH_DELIVERY_LATENCY_MS", 100)
    in_flight = _env_int("BIK_BENCH_DELIVERY_IN_FLIGHT", 8)
    batch_size = _env_int("BIK_BENCH_DELIVERY_BATCH_SIZE", 100)
    with tempfile.TemporaryDirectory() as folder, _emulator_process(latency_ms) as url:
        path = Path(folder) / "bench.csv"
        _write_csv(path, rows)
        token_file = Path(folder) / "token"
        token_file.write_text(DEFAULT_TOKEN)
        argv = [str(path), "--api-url", url, "--token-file", str(token_file), "--json"]
        argv += ["--max-in-flight", str(in_flight), "--batch-size", str(batch_size)]
        before = _state(url)["upsert_requests"]
        stdout, stderr = io.StringIO(), io.StringIO()
        level, metrics_on = logger.log_level, observability._METRICS_ON.is_set()
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = push.main(argv)
            seconds = time.perf_counter() - started
        finally:
            logger.setLevel(level)
            if metrics_on:
                observability._METRICS_ON.set()
        requests = _state(url)["upsert_requests"] - before
    report = json.loads(stdout.getvalue().strip().splitlines()[-1])
    delivered = int(report["created"]) + int(report["updated"])
    rate = delivered / seconds
    bound = in_flight * batch_size / (latency_ms / 1000)
    return {
        "measures": "bik-sync push of a CSV (record core, deliver_stream, journal, outputs) on the emulator",
        "exit_code": code,
        "rows": rows,
        "latency_ms": latency_ms,
        "max_in_flight": in_flight,
        "batch_size": batch_size,
        "requests": requests,
        "seconds": round(seconds, 3),
        "delivered_records": delivered,
        "push_records_per_s": round(rate, 1),
        "bound_records_per_s": round(bound, 1),
        "push_bound_ratio": round(rate / bound, 3),
        "cpus": os.cpu_count(),
    }
