"""push's parts without a network: the journal, the token sources, the plain progress lines, and a
whole run against an in-process BIK."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from bik_sync.commands.common import CannotStart, Parser, add_bik_arguments, allow_http, token_provider
from bik_sync.commands.journal import Identity, Journal, JournalBusy
from bik_sync.commands.outputs import Outputs
from bik_sync.commands.progress import Lines, Silent
from bik_sync.commands.push_run import (
    AUTH_REFUSED,
    PushCannotStart,
    PushPlan,
    PushRun,
    find_people,
    open_file,
)
from bik_sync.duplicates import DuplicateMerger
from bik_sync.records import ReadOptions
from tests.unit.test_delivery import FakeBik, client_for
from tests.unit.test_delivery_stream import RefusingAfter

IDENTITY = Identity("digest-1", "reading", "https://bik.example appId=")


def test_the_journal_keeps_what_bik_settled_across_runs(tmp_path: Path) -> None:
    # Given a journal that recorded two answers, then was closed (the push stopped)
    path = tmp_path / "f.csv.push-journal.sqlite"
    journal = Journal(path, IDENTITY)
    journal.record([2, 3, 4], created=2, updated=0, rejected=[(4, "bad email")], unmatched=[])
    journal.record([5, 6], created=0, updated=1, rejected=[], unmatched=["odd entry"])
    journal.close()

    # When the same file is pushed again
    again = Journal(path, IDENTITY)

    # Then it resumes with the settled rows, the rejects and the counts
    assert again.notice.startswith("resuming: 5 rows")
    assert again.settled_between(1, 5) == {2, 3, 4, 5}
    assert again.rejected_between(0, 100) == {4: "bad email"}
    totals = again.totals()
    assert (totals.created, totals.updated, totals.unmatched) == (2, 1, ("odd entry",))
    assert again.totals(up_to_row=4).created == 2 and again.totals(up_to_row=4).updated == 0
    again.close()


@pytest.mark.parametrize(
    ("identity", "restart", "notice"),
    [
        (Identity("digest-2", "reading", IDENTITY.target), False, "the file changed since the last push"),
        (Identity("digest-1", "other", IDENTITY.target), False, "the mapping or the read options changed"),
        (Identity("digest-1", "reading", "https://x appId=7"), False, "the BIK URL or the app id changed"),
        (IDENTITY, True, "--restart: starting over"),
    ],
)
def test_a_change_or_restart_starts_the_journal_over_and_says_why(
    tmp_path: Path, identity: Identity, restart: bool, notice: str
) -> None:
    # Given a journal with a settled row
    path = tmp_path / "j.sqlite"
    first = Journal(path, IDENTITY)
    first.record([2], created=1, updated=0, rejected=[], unmatched=[])
    first.close()
    # When it is opened for another file, reading, target, or with --restart
    journal = Journal(path, identity, restart=restart)
    # Then it is empty again, and the notice says why
    assert notice in journal.notice
    assert journal.settled_count() == 0
    journal.close()


def test_two_pushes_cannot_share_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, IDENTITY)
    with pytest.raises(JournalBusy):
        Journal(path, IDENTITY)
    journal.close()


def _args(argv: list[str], env: dict[str, str]) -> argparse.Namespace:
    parser = Parser(prog="t")
    add_bik_arguments(parser, env)
    return parser.parse_args(argv)


def test_the_token_comes_from_a_file_in_any_secret_form_or_from_the_environment(tmp_path: Path) -> None:
    # Given a token file in the {"apiKey","apiSecret"} form, and a plain token in the environment
    token_file = tmp_path / "token.json"
    token_file.write_text('{"apiKey": "k", "apiSecret": "s"}')
    expected = base64.b64encode(b"k:s").decode()
    # When the token is read from each source, then each gives BIK's Basic token
    assert token_provider(_args(["--token-file", str(token_file)], {}))(False) == expected
    assert token_provider(_args([], {"BIK_AUTH_TOKEN": " plain "}))(False) == "plain"


def test_no_token_or_a_bad_one_is_a_reason_not_to_start_that_never_shows_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"apiKey": "only-the-key-SECRETVALUE"}')
    with pytest.raises(CannotStart, match="no BIK token"):
        token_provider(_args([], {}))
    with pytest.raises(CannotStart) as caught:
        token_provider(_args(["--token-file", str(bad)], {}))
    assert "SECRETVALUE" not in str(caught.value)


def test_http_is_allowed_only_for_loopback() -> None:
    assert allow_http("http://127.0.0.1:8765/integrations/x") is True
    assert allow_http("https://bikapi.bikayi.app/integrations/x") is False
    with pytest.raises(CannotStart, match="must use https"):
        allow_http("http://bik.example/integrations/x")


def test_plain_progress_lines_come_every_interval_and_once_at_the_end() -> None:
    # Given a line display every 5 s on a scripted clock
    now = [0.0]
    out = io.StringIO()
    lines = Lines("push f.csv", 1000, out, interval_s=5.0, clock=lambda: now[0])
    # When it is updated at 1 s, 6 s and 7 s, then closed
    for at, done in ((1.0, 100), (6.0, 600), (7.0, 700)):
        now[0] = at
        lines.update(done, {"rows": done, "failed": 0})
    lines.close()
    # Then one line came at 6 s (with an ETA) and one at the end, with the counts
    text = out.getvalue().splitlines()
    assert text == [
        "push f.csv: 60% (ETA 0:04) rows 600  failed 0",
        "push f.csv: 70% (ETA 0:03) rows 700  failed 0",
    ]


def _push(
    tmp_path: Path, rows: int, http: urllib3.PoolManager, *, batch_size: int, in_flight: int
) -> dict[str, Any]:
    """A push of a ``rows``-row CSV through PushRun, against an in-process BIK."""
    path = tmp_path / "c.csv"
    lines = ["First Name,Last Name,Email"] + [f"F{n},L{n},user{n}@example.com" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    record_file, reader, handle = open_file(path, ReadOptions())
    journal = Journal(tmp_path / "c.csv.push-journal.sqlite", IDENTITY)
    outputs = Outputs(tmp_path, path, record_file)
    plan = PushPlan(path, ReadOptions(), batch_size, 240_000, in_flight)
    with handle:
        report = outputs.finish(
            PushRun(plan, client_for(http), journal, outputs, Silent()).run(record_file, reader)
        )
    journal.close()
    return report


class HoldsTheFirstRequest(FakeBik):
    """Holds the request carrying user0 until one carrying ``user{later}`` has come (at most 10 s)."""

    def __init__(self, later: int) -> None:
        super().__init__()
        self.later = f"user{later}@example.com"
        self.came = threading.Event()
        self.overtaken: bool | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        emails = {record["email"] for record in json.loads(kwargs["body"])["userProperties"]}
        if self.later in emails:
            self.came.set()
        if "user0@example.com" in emails:
            self.overtaken = self.came.wait(timeout=10)
        return super().request(method, url, **kwargs)


def test_a_slow_request_does_not_hold_back_the_rest_of_the_file(tmp_path: Path) -> None:
    # Given a 60-row file and a BIK slow to answer the request holding its first row
    bik = HoldsTheFirstRequest(later=50)

    # When it is pushed one row a request, two at a time
    report = _push(tmp_path, 60, bik, batch_size=1, in_flight=2)

    # Then the other request slot went on through the file meanwhile, and every row went in once
    assert bik.overtaken is True, "the push waited for the first answer before going on"
    assert report["created"] == 60 and report["rows"] == 60 and report["status"] == "complete"


def test_credentials_refused_part_way_stop_the_push_and_every_row_read_is_counted_once(
    tmp_path: Path,
) -> None:
    # Given a 500-row file and a BIK that refuses the credentials after 4 answers
    bik = RefusingAfter(4)

    # When it is pushed 10 rows a request, two at a time
    report = _push(tmp_path, 500, bik, batch_size=10, in_flight=2)

    # Then the push stopped part way, saying where, with every row it read counted once
    assert report["status"] == "incomplete" and "BIK refused the credentials" in report["error"]
    assert report["error"].startswith(f"stopped after row {report['rows'] + 1}:")
    assert report["created"] == 40 and report["failed"] == report["rows"] - 40 and 40 < report["rows"] < 500


def _push_lines(
    tmp_path: Path,
    lines: list[str],
    http: urllib3.PoolManager,
    *,
    batch_size: int,
    run_class: type[PushRun] = PushRun,
) -> dict[str, Any]:
    """A push as ``bik-sync push`` runs it: the first pass (find_people), then PushRun with its groups."""
    path = tmp_path / "people.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    merger, digest = find_people(path, ReadOptions(), Silent())
    return _push_found(path, merger, digest, http, batch_size=batch_size, in_flight=2, run_class=run_class)


def _push_found(
    path: Path,
    merger: DuplicateMerger,
    digest: str,
    http: urllib3.PoolManager,
    *,
    batch_size: int,
    in_flight: int,
    run_class: type[PushRun] = PushRun,
    checked_digest: str = "",
) -> dict[str, Any]:
    """PushRun over ``path`` with what a first pass found (``checked_digest``: the plan's digest)."""
    record_file, reader, handle = open_file(path, ReadOptions())
    journal = Journal(path.with_name(path.name + ".push-journal.sqlite"), Identity(digest, "reading", "t"))
    outputs = Outputs(path.parent, path, record_file)
    plan = PushPlan(path, ReadOptions(), batch_size, 240_000, in_flight, file_digest=checked_digest)
    with handle:
        run = run_class(plan, client_for(http), journal, outputs, Silent(), merger)
        report = outputs.finish(run.run(record_file, reader))
    journal.close()
    return report


def test_rows_of_one_person_are_merged_in_file_order_and_sent_once_at_their_last_row(tmp_path: Path) -> None:
    # Given 300 rows where Asha has three rows far apart (a later empty city keeps the earlier one)
    lines = ["First Name,Last Name,Email,City"] + [f"F{n},L{n},user{n}@example.com,Pune" for n in range(300)]
    lines[5] = "Asha,Rao,asha@example.in,Kochi"
    lines[150] = "Asha,Iyer,asha@example.in,Mumbai"
    lines[290] = "Asha,Iyer,asha@example.in,"
    bik = FakeBik()

    # When it is pushed 10 rows a request, two requests at a time (which may land in any order)
    report = _push_lines(tmp_path, lines, bik, batch_size=10)

    # Then Asha went once, merged in file order, and the report counts her two merged rows
    assert bik.store["asha@example.in"] == {
        "firstName": "Asha",
        "lastName": "Iyer",
        "email": "asha@example.in",
        "city": "Mumbai",
    }
    assert sum(bik.batches) == 298 == report["created"]
    assert report["duplicates"] == 2 and report["rows"] == 300 and report["status"] == "complete"
    parts = ("created", "updated", "rejected", "failed", "duplicates")
    assert report["rows"] == sum(report[name] for name in parts)


def test_a_json_file_with_two_lists_is_refused_before_any_of_it_is_sent(tmp_path: Path) -> None:
    # Given a JSON document with a list of customers and a second list (a CRM's staff)
    path = tmp_path / "crm.json"
    person = {"first_name": "Asha", "last_name": "Rao", "email": "asha@example.in"}
    path.write_text(json.dumps({"contacts": [person], "users": [{**person, "email": "rep@crm.example"}]}))

    # When the first pass reads it
    with pytest.raises(PushCannotStart) as refused:
        find_people(path, ReadOptions(), Silent())

    # Then it is refused whole, saying so, and nothing was sent (the push never starts)
    assert "nothing was sent" in str(refused.value) and str(path) in str(refused.value)


def test_the_first_pass_digest_is_the_files_sha256_even_when_damage_stops_reading(tmp_path: Path) -> None:
    # Given a 1.5 MB CSV whose quote left open at row 100 swallows ten rows: reading stops there
    path = tmp_path / "damaged.csv"
    rows = [f"F{n},L{n},user{n}@example.com" for n in range(50_000)]
    rows[100], rows[110] = 'F100,"L100,user100@example.com', 'F110,L110",user110@example.com'
    path.write_text("First Name,Last Name,Email\n" + "\n".join(rows) + "\n")

    # When the first pass reads it
    _, digest = find_people(path, ReadOptions(), Silent())

    # Then the digest is over every byte of the file
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_push_stopped_with_a_person_half_read_fails_their_record_and_the_next_run_sends_it_merged(
    tmp_path: Path,
) -> None:
    # Given 300 rows where Asha has rows 7 and 290, and a BIK that refuses the credentials after 4 answers
    lines = ["First Name,Last Name,Email,City"] + [f"F{n},L{n},user{n}@example.com,Pune" for n in range(300)]
    lines[7], lines[290] = "Asha,Rao,asha@example.in,Kochi", "Asha,Iyer,asha@example.in,"

    # When it is pushed 10 rows a request, two at a time
    first = _push_lines(tmp_path, lines, RefusingAfter(4), batch_size=10)

    # Then it stopped part way with Asha's record (as far as read) failed, and every row read counted once
    assert first["status"] == "incomplete" and first["rows"] < 290
    parts = ("created", "updated", "rejected", "failed", "duplicates")
    assert first["rows"] == sum(first[name] for name in parts) and first["duplicates"] == 0
    failed = [json.loads(line) for line in Path(first["failed_files"][0]).read_text().splitlines()]
    assert {"_row": 8, "firstName": "Asha", "lastName": "Rao"}.items() <= next(
        record.items() for record in failed if record.get("email") == "asha@example.in"
    )

    # And when the same command runs again with BIK answering, Asha goes once, merged, at row 291
    bik = FakeBik()
    second = _push_lines(tmp_path, lines, bik, batch_size=10)
    assert second["status"] == "complete" and second["rows"] == 300 and second["duplicates"] == 1
    assert second["rows"] == sum(second[name] for name in parts)
    assert second["created"] == 299 and second["resumed_rows"] == 40
    assert bik.store["asha@example.in"] == {
        "firstName": "Asha",
        "lastName": "Iyer",
        "email": "asha@example.in",
        "city": "Kochi",
    }


class _CountedHeld(dict[int, Any]):
    """The rows a push holds for people not yet complete, counting how often one is looked at."""

    looked_at = 0

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for row in super().values():
            _CountedHeld.looked_at += 1
            yield row


class _WatchedRun(PushRun):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held = _CountedHeld()


def test_a_push_stopped_with_thousands_of_people_half_read_fails_each_looking_at_their_row_once(
    tmp_path: Path,
) -> None:
    # Given 3,000 people, each with a row in the file's first half and one in its second (two
    # exports joined), a filler row between, and a BIK that refuses the credentials late in the first half
    people = 3000
    lines = ["First Name,Last Name,Email,City"]
    for n in range(people):
        lines += [f"F{n},L{n},user{n}@example.com,Pune", f"G{n},L{n},filler{n}@example.com,Pune"]
    lines += [f"F{n},L{n},user{n}@example.com,Kochi" for n in range(people)]
    _CountedHeld.looked_at = 0

    # When it is pushed 500 rows a request
    report = _push_lines(tmp_path, lines, RefusingAfter(5), batch_size=500, run_class=_WatchedRun)

    # Then every person half read is failed, and the rows held for them were each looked at once
    # (not once per person failed: with a million people that took hours)
    parts = ("created", "updated", "rejected", "failed", "duplicates")
    assert report["status"] == "incomplete" and report["rows"] == sum(report[name] for name in parts)
    half_read = report["failed"] - (report["rows"] - report["created"] - report["failed"])
    assert half_read > 2000
    assert _CountedHeld.looked_at <= report["failed"]


def test_credentials_refused_while_people_left_open_by_a_changed_file_are_sent_count_every_row(
    tmp_path: Path,
) -> None:
    # Given 100 people with a row each in a file's first half and in its second, the first pass
    # over it, then the file cut to its first half (exported again) before the push reads it
    path = tmp_path / "people.csv"
    header = ["First Name,Last Name,Email,City"]
    first = [f"F{n},L{n},user{n}@example.com,Pune" for n in range(100)]
    path.write_text("\n".join(header + first + [f"F{n},L{n},user{n}@example.com,Kochi" for n in range(100)]))
    merger, digest = find_people(path, ReadOptions(), Silent())
    path.write_text("\n".join(header + first) + "\n")

    # When it is pushed 10 rows a request to a BIK that refuses the credentials after 2 answers
    report = _push_found(path, merger, digest, RefusingAfter(2), batch_size=10, in_flight=1)

    # Then the people sent before the refusal are in, every other one is failed, and it says it stopped
    assert report["created"] == 20 and report["failed"] == 80 and report["rows"] == 100
    assert report["status"] == "incomplete" and AUTH_REFUSED in report["error"]
    failed = Path(report["failed_files"][0]).read_text().splitlines()
    assert len({json.loads(line)["email"] for line in failed}) == 80


def test_a_file_that_changed_after_the_first_pass_is_pushed_as_read_and_the_report_says_so(
    tmp_path: Path,
) -> None:
    # Given the first pass over a 50-row file, then 10 rows appended to it (an export still being written)
    path = tmp_path / "growing.csv"
    lines = ["First Name,Last Name,Email"] + [f"F{n},L{n},user{n}@example.com" for n in range(50)]
    path.write_text("\n".join(lines) + "\n")
    merger, digest = find_people(path, ReadOptions(), Silent())
    with path.open("a") as more:
        more.write("\n".join(f"F{n},L{n},user{n}@example.com" for n in range(50, 60)) + "\n")

    # When it is pushed with what the first pass found
    report = _push_found(path, merger, digest, FakeBik(), batch_size=10, in_flight=2, checked_digest=digest)

    # Then every row read is counted once, and the report says the file changed and to push it again
    assert report["rows"] == 60 == report["created"]
    assert report["status"] == "incomplete" and "the file changed while it was pushed" in report["error"]
