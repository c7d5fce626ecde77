"""`make demo`: the whole product on the local stack, seen from the user's side.

Starts the stack (moto + BIK emulator + pollers running the real handlers), uploads a customers
file to incoming/, waits for its job report, sends one SQS message as another system would, and
prints what happened. The last line is the file's job report as one line of JSON. Every server
it started is stopped, whatever happens.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import urllib3
from botocore.exceptions import BotoCoreError, ClientError

from bik_local.stack import RunningStack, StackDidNotStart, launch
from bik_sync.commands.progress import make_progress
from bik_sync.commands.status import JobsTable, watch
from bik_sync.job_state import job_id_for

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "customers.csv"
LOG_PATH = Path("out/demo/stack.log")
SQS_RECORDS = [
    {
        "firstName": "Meera",
        "lastName": "Iyer",
        "phoneNumber": "+91 98450 12345",
        "email": "Meera.Iyer@example.in",
        "tags": ["crm", "vip"],
        "smsMarketingConsent": True,
    },
    {"firstName": "Kabir", "lastName": "Shah", "email": "kabir.shah@example.in", "city": "Pune"},
    {"firstName": "Nobody", "lastName": "Known", "city": "Surat"},  # no phone, email or id: a reject
]


class DemoError(RuntimeError):
    pass


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bik-sync demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--file", type=Path, default=SAMPLE, help="customers file to upload (default: the sample)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the job report")
    args = parser.parse_args(list(argv))
    if not args.file.is_file():
        print(f"demo: {args.file}: no such file", file=sys.stderr)
        return 2
    print("Starting the local stack (moto server, BIK emulator, Lambda pollers)...")
    try:
        stack = launch(LOG_PATH)
    except StackDidNotStart as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    try:
        report = run(stack, args.file, args.timeout)
    except (DemoError, BotoCoreError, ClientError, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        # The user sees what went wrong in one line; the stack's log has the details.
        print(f"demo: {type(exc).__name__}: {exc} (stack log: {LOG_PATH})", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    print(json.dumps(report, sort_keys=True, separators=(",", ":")))
    if report.get("status") == "unreadable":
        return 1
    return 0 if _balanced(report) else 1


def run(stack: RunningStack, path: Path, timeout_s: float) -> dict[str, Any]:
    s3, sqs = stack.client("s3"), stack.client("sqs")
    bucket = stack.info["bucket"]
    key = f"incoming/{path.name}"
    started = time.monotonic()
    s3.upload_file(str(path), bucket, key)
    print(
        f"Uploaded {path} to s3://{bucket}/{key} ({path.stat().st_size:,} bytes); waiting for its report...",
        flush=True,
    )
    _watch_job(stack, key, timeout_s)
    report = _wait_json(stack, f"reports/{key}.json", 30.0)
    print(f"Job done in {time.monotonic() - started:.1f}s.\n")
    _print_report("File job", report)
    _print_rejects(s3, bucket, report)

    print("\nSending one SQS message as another system would (3 records, one without any identity)...")
    sent = sqs.send_message(
        QueueUrl=stack.info["work_queue_url"], MessageBody=json.dumps({"userProperties": SQS_RECORDS})
    )
    message_report = _wait_json(stack, f"reports/sqs/{sent['MessageId']}.json", 120.0)
    _print_report("Message job", message_report)
    _print_rejects(s3, bucket, message_report)

    if report.get("status") == "unreadable":
        print(f"\nThe file could not be read: {report.get('error', 'no reason given')}")
        return report
    state = urllib3.request("GET", stack.info["bik_base_url"] + "/__emulator/state", timeout=5.0).json()
    print(
        f"\nBIK emulator now holds {state['users']} users after {state['upsert_requests']} upsert requests."
    )
    print(f"Handler logs (CloudWatch, locally): {stack.log_path}")
    print(
        "Every row accounted for: rows == created + updated + rejected + failed + duplicates"
        if _balanced(report)
        else "ERROR: the report's counts do not add up to its rows"
    )
    return report


def _watch_job(stack: RunningStack, key: str, timeout_s: float) -> None:
    """The job's progress (batches done of total, counts) while it runs: `status --watch`'s display."""
    bucket = stack.info["bucket"]
    version = stack.client("s3").head_object(Bucket=bucket, Key=key).get("VersionId") or ""
    table = JobsTable(stack.info["jobs_table"], stack.client("dynamodb"))
    job_id = job_id_for(bucket, key, version)
    progress = make_progress(f"job {key}", None, unit="batch")
    state = watch(lambda: table.by_id(job_id), progress=progress, interval_s=0.5, timeout_s=timeout_s)
    if state is None or not state.complete:
        raise DemoError(f"the job of {key} is not complete after {timeout_s:.0f}s")


def _balanced(report: dict[str, Any]) -> bool:
    return bool(
        report["rows"]
        == report["created"]
        + report["updated"]
        + report["rejected"]
        + report["failed"]
        + report.get("duplicates", 0)
    )


def _wait_json(stack: RunningStack, key: str, timeout_s: float) -> dict[str, Any]:
    body = stack.wait_for_object(key, timeout_s)
    if body is None:
        raise DemoError(f"no report at {key} after {timeout_s:.0f}s")
    document: dict[str, Any] = json.loads(body)
    return document


def _print_report(title: str, report: dict[str, Any]) -> None:
    print(f"{title}: {report['input']}  status={report['status']}")
    print(
        f"  rows {report['rows']}  created {report['created']}  updated {report['updated']}  "
        f"rejected {report['rejected']}  failed {report['failed']}"
    )
    if report.get("error"):
        print(f"  error: {report['error']}")
    if report.get("ignored_columns"):
        print(f"  ignored columns: {', '.join(report['ignored_columns'])}")
    print(f"  report:  {report['report']}")
    for key in report.get("rejects_files", []):
        print(f"  rejects: {key}")
    for key in report.get("failed_files", []):
        print(f"  failed:  {key}")


def _print_rejects(s3: Any, bucket: str, report: dict[str, Any], limit: int = 5) -> None:
    """The first rejects by row and reason only: the values themselves stay in the file."""
    shown = 0
    for key in report.get("rejects_files", []):
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8-sig")
        if key.endswith(".csv"):
            delimiter = report.get("delimiter") or ","  # the input's own, which its rejects file keeps
            rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        for row in rows:
            if shown == limit:
                return
            if shown == 0:
                print("  first rejects:")
            print(f"    row {row.get('_row')}: {row.get('_error')}")
            shown += 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
