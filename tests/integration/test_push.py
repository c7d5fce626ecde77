"""`bik-sync push` against the emulator over HTTP: faults, a real SIGKILL part way, a pty, --json."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from bik_local.emulator import Emulator

pytestmark = pytest.mark.integration

EMULATOR_SEED = 12


def write_csv(path: Path, rows: int, *, invalid_every: int = 0, start: int = 0) -> int:
    """A Shopify-style CSV; every ``invalid_every``-th row has no last name. Returns the valid rows."""
    lines = ["First Name,Last Name,Email,Phone,City"]
    valid = 0
    for n in range(start, start + rows):
        bad = invalid_every and n % invalid_every == 0
        last = "" if bad else f"Last{n}"
        lines.append(f"First{n},{last},user{n}@example.com,+9198{n:08d},Pune")
        valid += not bad
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return valid


def push_command(emulator: Emulator, path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bik_sync.cli", "push", str(path), "--api-url", emulator.url, *extra]


def run_push(emulator: Emulator, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIK_AUTH_TOKEN": emulator.token}
    return subprocess.run(
        push_command(emulator, path, *extra),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def report_of(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.with_name(path.name + ".report.json").read_text())
    return document


def adds_up(report: dict[str, Any]) -> bool:
    parts = report["created"] + report["updated"] + report["rejected"] + report["failed"]
    return bool(
        report["rows"] == parts
        and report["rejected"] == report["rejected_invalid"] + report["rejected_by_bik"]
    )


def stored_emails(emulator: Emulator) -> set[str]:
    return {str(user["email"]) for user in emulator.users()}


def test_with_errors_429s_and_resets_bik_ends_with_exactly_the_valid_rows(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Given a file of 600 rows, 20 of them invalid, and a BIK that fails, throttles and resets often
    path = tmp_path / "customers.csv"
    valid = write_csv(path, 600, invalid_every=30)
    emulator.set_faults(error_rate=0.1, throttle_rate=0.1, retry_after_s=0.05, reset_rate=0.1)

    # When it is pushed, 20 records a request
    result = run_push(emulator, path, "--batch-size", "20", "--max-in-flight", "4", "--json")

    # Then BIK holds exactly the valid rows, each once, and the report adds up
    assert result.returncode == 1, result.stderr  # rows were rejected
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert stored_emails(emulator) == {f"user{n}@example.com" for n in range(600) if n % 30}
    state = emulator.state()
    assert state["created"] == valid and state["updated"] == 0, "a record BIK confirmed was sent again"
    assert sum(state["faults_served"].values()) > 0, "no fault was served: the test proves nothing"
    assert report["created"] == valid and report["failed"] == 0 and report["rejected_invalid"] == 20
    assert adds_up(report) and report["status"] == "complete"
    assert report["reasons"] == {'"lastName" is required': 20}
    rejects = path.with_name("customers.csv.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rejects[0].endswith("_row,_error") and len(rejects) == 21
    assert result.stdout.count("\n") == 1, "with --json, stdout holds the report alone"


def _settled_rows(journal: Path) -> int:
    try:
        with sqlite3.connect(journal, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM settled_rows").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_a_push_killed_part_way_and_run_again_sends_only_what_bik_did_not_confirm(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Given a 3,000-row file and a BIK answering each request after 40 ms
    path = tmp_path / "big.csv"
    valid = write_csv(path, 3000)
    journal = tmp_path / "big.csv.push-journal.sqlite"
    emulator.set_faults(latency_ms=40)
    env = {**os.environ, "BIK_AUTH_TOKEN": emulator.token}
    extra = ("--batch-size", "50", "--max-in-flight", "2", "--json")

    # When the push is killed (SIGKILL) once BIK has settled some rows, and the same command runs again
    child = subprocess.Popen(push_command(emulator, path, *extra), env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _settled_rows(journal) < 600 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.5)  # the requests in flight at the kill reach the emulator's store (or not) by now
    settled_before = _settled_rows(journal)
    received_before = emulator.state()["records_received"]
    assert 0 < settled_before < valid, "the push was not killed part way"
    result = run_push(emulator, path, *extra)

    # Then BIK holds every row, the second run sent only what the journal had not settled,
    # and the report counts every row once
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    state = emulator.state()
    assert stored_emails(emulator) == {f"user{n}@example.com" for n in range(3000)}
    assert state["records_received"] - received_before == valid - settled_before
    assert report["resumed_rows"] == settled_before
    assert report["created"] + report["updated"] == valid and adds_up(report)
    # Only records in flight at the kill (applied, never confirmed) reached BIK twice.
    assert state["updated"] == received_before - settled_before <= 2 * 50
    assert report["updated"] == state["updated"]


def test_a_changed_file_starts_over_by_itself_and_says_so(emulator: Emulator, tmp_path: Path) -> None:
    # Given a file pushed once
    path = tmp_path / "c.csv"
    write_csv(path, 30)
    assert run_push(emulator, path).returncode == 0

    # When a row changes and it is pushed again
    write_csv(path, 30, start=1)
    result = run_push(emulator, path)

    # Then the push says it starts over, and every row is sent again
    assert result.returncode == 0, result.stderr
    assert "c.csv: the file changed since the last push: starting over" in result.stderr
    assert report_of(path)["resumed_rows"] == 0
    assert emulator.state()["records_received"] == 60


def test_refused_credentials_exit_2_with_one_line_and_no_traceback(
    emulator: Emulator, tmp_path: Path
) -> None:
    # Given a wrong token
    path = tmp_path / "c.csv"
    write_csv(path, 10)
    env = {**os.environ, "BIK_AUTH_TOKEN": "d3Jvbmc6d3Jvbmc="}

    # When the file is pushed
    result = subprocess.run(
        push_command(emulator, path), capture_output=True, text=True, env=env, check=False
    )

    # Then it exits 2 saying what to check, without a traceback or the token
    assert result.returncode == 2
    assert "BIK refused the credentials: check the API key and secret" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "d3Jvbmc6d3Jvbmc=" not in result.stderr + result.stdout
    assert report_of(path)["failed"] == 10


def test_on_a_terminal_the_progress_bar_renders_and_ends_cleanly(emulator: Emulator, tmp_path: Path) -> None:
    # Given a file and a pseudo-terminal for stderr
    path = tmp_path / "tty.csv"
    write_csv(path, 400)
    emulator.set_faults(latency_ms=20)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    env = {**os.environ, "BIK_AUTH_TOKEN": emulator.token}

    # When the push runs with stderr on the terminal
    child = subprocess.Popen(
        push_command(emulator, path, "--batch-size", "20", "--max-in-flight", "1"),
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    screen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert child.wait(timeout=60) == 0
    assert child.stdout is not None
    child.stdout.close()

    # Then a tqdm bar was redrawn in place, reached 100% with the counts, and the last line ends
    text = screen.decode("utf-8", "replace")
    assert "\r" in text, "the bar was not redrawn in place"
    last = text.rstrip("\r\n").split("\r")[-1]
    assert "100%" in last and "rows 400" in last and "created 400" in last and "failed 0" in last
    assert text.endswith("\n") and "Traceback" not in text
    assert "user1@example.com" not in text, "progress output must carry no personal data"


def test_check_says_whether_the_credentials_work(emulator: Emulator) -> None:
    # Given the emulator's token and a wrong one
    command = [sys.executable, "-m", "bik_sync.cli", "check", "--api-url", emulator.url]

    # When check runs with each
    good = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "BIK_AUTH_TOKEN": emulator.token},
        check=False,
    )
    bad = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "BIK_AUTH_TOKEN": "eDp5"}, check=False
    )

    # Then one line each, exit 0 and 1
    assert good.returncode == 0 and good.stdout.startswith("credentials OK")
    assert bad.returncode == 1 and "check the API key and secret" in bad.stdout
