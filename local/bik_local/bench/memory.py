"""Memory: peak RSS of the real ingest path, for files small, large and made to hurt.

Each file is put in S3 (moto's server, in a process of its own, so its storage is not counted) and
ingested by ``ingest_object`` in a fresh process that reads the object over HTTP as the Lambda does,
with the jobs table on the same server; the work queue is a client that only counts what it is sent
(moto's queue slows down as it fills, and its memory is not ingest's). The child reports its own
peak RSS (``ru_maxrss``).

Figures: ``rss_10k_mb`` and ``rss_1m_mb`` for a 10,000-row and a 1,000,000-row Shopify-shaped CSV
and ``rss_ratio`` (1M over 10k, at most 1.5: memory does not grow with the file); ``rss_long_line_mb``
for a file whose one line is 300 MB of non-ASCII text, and ``rss_wide_mb`` for a header of 50,000
columns, each at most 300 MB. ``BIK_BENCH_MEMORY_ROWS`` changes the large file's rows.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from bik_local.bench.ingest import write_file
from bik_local.stack import FAKE_CREDENTIALS, aws_client, free_port

ROWS_ENV = "BIK_BENCH_MEMORY_ROWS"
BUCKET = "bik-sync-bench-memory"
TABLE = "bik-sync-bench-jobs"
REGION = "us-east-1"
LONG_LINE_MB = 300
WIDE_COLUMNS = 50_000
MAX_RATIO = 1.5
MAX_HOSTILE_MB = 300


class CountingQueue:
    """A work queue that takes every entry and keeps only their number and size."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send_batch(self, entries: Sequence[Any]) -> set[str]:
        self.messages += len(entries)
        self.bytes += sum(len(entry.body) for entry in entries)
        return set()


def _client(service: str, endpoint: str) -> Any:
    return aws_client(service, endpoint)


def _child(endpoint: str, key: str) -> None:
    """Ingest one object and print what it read and the process's peak RSS."""
    from bik_sync.ingest import IngestDeps, ingest_object
    from bik_sync.jobs import JobStore
    from bik_sync.s3_events import S3ObjectRef
    from bik_sync.settings import IngestSettings
    from bik_sync.storage import S3ObjectStore

    queue = CountingQueue()
    # The signing key is given below, so its secret's name is never used.
    settings = IngestSettings(
        work_queue_url="counting",
        jobs_table_name=TABLE,
        job_signing_secret_id="unused",  # noqa: S106
    )
    deps = IngestDeps(
        settings=settings,
        objects=S3ObjectStore(_client("s3", endpoint)),
        queue=queue,
        jobs=JobStore(TABLE, _client("dynamodb", endpoint)),
        signing_key=lambda: b"bench-signing-key-of-thirty-two-bytes",
    )
    started = time.perf_counter()
    result = ingest_object(S3ObjectRef(bucket=BUCKET, key=key), deps)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rows": result.rows,
                "status": result.status,
                "messages": queue.messages,
                "seconds": round(time.perf_counter() - started, 1),
                "rss_mb": round(peak_kb / 1024, 1),
            }
        )
    )


def _measure(endpoint: str, key: str) -> dict[str, Any]:
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    env.setdefault("POWERTOOLS_SERVICE_NAME", "bik-sync")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BikSync")
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    done = subprocess.run(
        [sys.executable, "-m", "bik_local.bench.memory", "--child", endpoint, key],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"rows"')]
    if done.returncode or not lines:
        raise RuntimeError(f"ingest of {key} failed: {done.stderr.strip().splitlines()[-1:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def _write_long_line(path: Path) -> None:
    with path.open("wb") as handle:
        handle.write(b"First Name,Last Name,Email\nA,B,")
        piece = "é".encode() * (1 << 19)  # 1 MiB
        for _ in range(LONG_LINE_MB):
            handle.write(piece)
        handle.write(b",a@example.in\nC,D,c@example.in\n")


def _write_wide(path: Path) -> None:
    header = "First Name,Last Name,Email," + ",".join(f"Extra column {n}" for n in range(WIDE_COLUMNS))
    row = "A,B,a@example.in" + "," * WIDE_COLUMNS
    path.write_text(header + "\n" + (row + "\n") * 100, encoding="utf-8")


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _client("s3", endpoint).list_buckets()
            return process, endpoint
        except (EndpointConnectionError, ConnectionClosedError):  # not listening yet
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("moto's server did not start")


def run() -> dict[str, Any]:
    rows = int(os.environ.get(ROWS_ENV, 1_000_000))
    process, endpoint = _start_moto()
    try:
        s3 = _client("s3", endpoint)
        s3.create_bucket(Bucket=BUCKET)
        _client("dynamodb", endpoint).create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        figures: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="bik-bench-memory-") as folder:
            files: dict[str, tuple[Path, Callable[[Path], None]]] = {
                "10k": (Path(folder) / "small.csv", lambda path: write_file(path, 10_000)),
                "1m": (Path(folder) / "large.csv", lambda path: write_file(path, rows)),
                "long_line": (Path(folder) / "long-line.csv", _write_long_line),
                "wide": (Path(folder) / "wide.csv", _write_wide),
            }
            for name, (path, write) in files.items():
                write(path)
                key = f"incoming/bench/{path.name}"
                s3.upload_file(str(path), BUCKET, key)
                path.unlink()
                measured = _measure(endpoint, key)
                figures[f"rss_{name}_mb"] = measured["rss_mb"]
                figures[f"rows_{name}"] = measured["rows"]
        figures["rss_ratio"] = round(figures["rss_1m_mb"] / figures["rss_10k_mb"], 2)
        figures["rss_ratio_max"] = MAX_RATIO
        figures["hostile_max_mb"] = MAX_HOSTILE_MB
        return figures
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps({"bench": "memory", **run()}))
