"""Delivery throughput: deliver() against the emulator at a fixed latency, beside its bound and naive sends.

The emulator answers every request after ``BIK_BENCH_DELIVERY_LATENCY_MS`` (100 by default: a bulk
upsert of 100 records to BIK's API is not faster than that from an AWS region; at 50 ms on a 2-core
machine the emulator's own CPU, not the sender, becomes the limit, and the ratio drops to ~0.73). With
``in_flight`` requests of ``batch_size`` records at a time, no sender can beat
``in_flight * batch_size / latency_s`` records/s: that is ``bound_records_per_s``. The naive sender
posts one record per request, one request after the other (same client, same warm connections),
over a smaller sample in the same run. The records are built before the clock starts; deliver()
encodes them (as it must) on the clock. Targets: ``bound_ratio`` >= 0.9, ``naive_ratio`` >= 50.

The emulator runs in its own process, as BIK runs on its own machines: its JSON parsing and
validation (a few ms of CPU per 100-record request) then does not compete with the sender for this
interpreter's GIL. It is still on the same cores, so on a small machine it weighs on the ratio.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import urllib3

from bik_local.emulator import DEFAULT_TOKEN, STATE_PATH
from bik_sync.bik.client import BikClient
from bik_sync.delivery import deliver
from bik_sync.observability import logger, metrics


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _records(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "firstName": "Bench",
            "lastName": f"Customer{n}",
            "phoneNumber": f"+9197{n:08d}",
            "email": f"bench{n}@example.in",
            "city": "Bengaluru",
            "tags": ["bench"],
            "smsMarketingConsent": True,
        }
        for n in range(start, start + count)
    ]


@contextlib.contextmanager
def _emulator_process(latency_ms: int) -> Iterator[str]:
    """An emulator in a child process; yields its upsert URL and stops it on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bik_local.emulator", "--port", "0", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "BIK emulator listening on <url>"
        if not line.strip():
            raise RuntimeError(f"the emulator did not start (exit code {process.poll()})")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _state(url: str) -> dict[str, Any]:
    base = url.split("/integrations/", 1)[0]
    response = urllib3.request("GET", base + STATE_PATH, timeout=5.0)
    state: dict[str, Any] = json.loads(response.data)
    return state


def run() -> dict[str, Any]:
    records_n = _env_int("BIK_BENCH_DELIVERY_RECORDS", 20_000)
    naive_n = _env_int("BIK_BENCH_DELIVERY_NAIVE_RECORDS", 60)
    latency_ms = _env_int("BIK_BENCH_DELIVERY_LATENCY_MS", 100)
    in_flight = _env_int("BIK_BENCH_DELIVERY_IN_FLIGHT", 8)
    batch_size = _env_int("BIK_BENCH_DELIVERY_BATCH_SIZE", 100)

    previous_level = logger.log_level
    logger.setLevel(logging.WARNING)  # the per-delivery INFO line would interleave with the JSON lines
    try:
        # Powertools prints a metrics blob to stdout every 100 values; keep stdout for the bench line.
        with contextlib.redirect_stdout(io.StringIO()), _emulator_process(latency_ms) as url:
            client = BikClient(url, lambda _: DEFAULT_TOKEN, allow_http=True, max_pool=in_flight * 2)
            warm_up = _records(10_000_000, in_flight * batch_size)  # open the connections first
            deliver(
                warm_up,
                client,
                batch_size=batch_size,
                max_in_flight=in_flight,
                deadline=time.monotonic() + 60,
            )
            before = _state(url)["upsert_requests"]
            records, naive_records = _records(0, records_n), _records(20_000_000, naive_n)  # off the clock

            started = time.perf_counter()
            outcome = deliver(
                records,
                client,
                batch_size=batch_size,
                max_in_flight=in_flight,
                deadline=time.monotonic() + 600,
            )
            delivered_s = time.perf_counter() - started
            requests = _state(url)["upsert_requests"] - before

            started = time.perf_counter()
            for record in naive_records:
                client.upsert([record], deadline=time.monotonic() + 60)
            naive_s = time.perf_counter() - started
        metrics.clear_metrics()
    finally:
        logger.setLevel(previous_level)

    delivered = outcome.created + outcome.updated
    delivered_rate = delivered / delivered_s
    bound_rate = in_flight * batch_size / (latency_ms / 1000)
    naive_rate = naive_n / naive_s
    return {
        "bench": "delivery",
        # The deployed worker runs the same pattern: a batch of 10 messages of 100 records, one request each.
        "measures": "deliver(): 100-record requests, max_in_flight at once, against the emulator",
        "records": records_n,
        "latency_ms": latency_ms,
        "max_in_flight": in_flight,
        "batch_size": batch_size,
        "requests": requests,
        "seconds": round(delivered_s, 3),
        "delivered_records": delivered,
        "undelivered_records": len(outcome.failed) + len(outcome.rejected) + len(outcome.unmatched),
        "delivered_records_per_s": round(delivered_rate, 1),
        "bound_records_per_s": round(bound_rate, 1),
        "naive_records": naive_n,
        "naive_records_per_s": round(naive_rate, 2),
        "bound_ratio": round(delivered_rate / bound_rate, 3),
        "naive_ratio": round(delivered_rate / naive_rate, 1),
    }
