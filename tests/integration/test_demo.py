"""`make demo` as a newcomer runs it: exit 0, and the last line is a balanced JSON job report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_the_sample_end_to_end_and_stops_its_servers(tmp_path: Path) -> None:
    # When the demo runs from a clean folder (it writes its stack log under ./out/)
    done = subprocess.run(
        [sys.executable, "-m", "bik_local.demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then it succeeds without a traceback, and its last line is the file's report
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["rows"] == 303
    # Every row in one place; the sample's three people who appear twice are merged (duplicates)
    assert report["rows"] == (
        report["created"] + report["updated"] + report["rejected"] + report["failed"] + report["duplicates"]
    )
    assert report["duplicates"] == 3
    assert "first rejects:" in done.stdout
    # And no server it started is left running
    leftovers = subprocess.run(
        ["pgrep", "-f", f"bik_local.stack --ready-file {tmp_path}"], capture_output=True, check=False
    )
    assert leftovers.stdout == b""


def test_demo_with_a_missing_file_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bik_local.demo", "--file", str(tmp_path / "nope.csv")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "nope.csv: no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_with_an_unreadable_file_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    # Given a file that is not customers at all (binary)
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes(range(256)) * 8)
    # When the demo runs with it
    done = subprocess.run(
        [sys.executable, "-m", "bik_local.demo", "--file", str(path), "--timeout", "120"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then it says the file could not be read, and does not claim every row is accounted for
    assert done.returncode == 1, done.stderr[-2000:]
    assert "The file could not be read:" in done.stdout
    assert "Every row accounted for" not in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
