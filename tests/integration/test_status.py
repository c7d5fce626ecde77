"""`bik-sync status` reads a job of the local stack from its jobs table, as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bik_local.resources import REGION
from bik_local.stack import FAKE_CREDENTIALS
from tests.integration.conftest import User

pytestmark = pytest.mark.integration

CSV = (
    b"First Name,Last Name,Email\nAsha,Rao,asha@example.com\n"
    b"Ravi,,ravi@example.com\nMeera,Iyer,meera@example.com\n"
)


def status(user: User, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": user.stack.info["endpoint_url"],
        "AWS_DEFAULT_REGION": REGION,
        "JOBS_TABLE_NAME": user.stack.info["jobs_table"],
    }
    command = [sys.executable, "-m", "bik_sync.cli", "status", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_status_of_a_key_shows_its_latest_job_counts_and_report(user: User) -> None:
    # Given a file uploaded twice (two jobs of one key), the second done
    user.upload("incoming/status-demo.csv", CSV[:60] + b"\n")
    user.report("reports/incoming/status-demo.csv.json")
    # A job is named by its upload time, to the second as S3 keeps it: the second upload is a later one
    time.sleep(1.1)
    user.upload("incoming/status-demo.csv", CSV)
    user.wait_queues_idle(60)

    # When a person asks for the key's status, and watches it
    plain = status(user, "incoming/status-demo.csv")
    watched = status(user, "status-demo.csv", "--watch")

    # Then the latest job is shown, complete, with its counts and its report key
    assert plain.returncode == 0, plain.stderr
    line = plain.stdout.strip()
    assert ": complete" in line and "rows 3" in line and "batches 1/1" in line
    assert "created 1  updated 1  rejected 1  failed 0" in line  # Asha came in with the first job
    assert "report reports/incoming/status-demo.csv/" in line  # the job's own report, under its key
    assert watched.returncode == 0 and watched.stdout.strip() == line
    assert "Traceback" not in plain.stderr + watched.stderr


def test_status_of_an_unknown_key_exits_2_with_one_line(user: User) -> None:
    result = status(user, "incoming/never-uploaded.csv")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("no job for 'incoming/never-uploaded.csv' in bik-sync-jobs")
