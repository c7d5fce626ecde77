"""`bik-sync push FILE`: send a customers file to BIK from a terminal, with the Lambdas' engine.

Same record core, same delivery engine, same rejects, failed and report files as the deployed
stack; a progress bar on stderr; resumable (a journal of what BIK settled, in --out). Exit codes:
0 every row is in BIK, 1 some rows were rejected or failed (or reading stopped part way), 2 it
could not start (unreadable file, no token, BIK refused the credentials), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bik_sync.bik.client import BikClient
from bik_sync.commands.common import (
    EXIT_CANNOT_START,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CannotStart,
    Parser,
    add_bik_arguments,
    allow_http,
    http_notice,
    token_provider,
)
from bik_sync.commands.journal import Identity, Journal, JournalBusy
from bik_sync.commands.outputs import Outputs, output_path
from bik_sync.commands.progress import make_progress
from bik_sync.commands.push_run import (
    AUTH_REFUSED,
    PushCannotStart,
    PushPlan,
    PushRun,
    find_people,
    open_file,
)
from bik_sync.observability import quiet_for_terminal
from bik_sync.records import ReadOptions
from bik_sync.records.options import FORMATS, PHONE_FORMATS
from bik_sync.settings import MAX_BATCH_BYTES, Settings
from bik_sync.storage import MappingError, read_mapping

PROG = "bik-sync push"
TOP_REASONS = 5


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = Parser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("file", type=Path, help="a CSV, JSON, JSON lines or .xlsx file, optionally gzipped")
    parser.add_argument("--mapping", metavar="M", help='a JSON mapping file: {"source column": "apiField"}')
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where the outputs and the journal go (default: beside FILE)"
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=defaults.bik_max_in_flight,
        metavar="N",
        help="requests to BIK at once (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.bik_batch_size,
        metavar="N",
        help="records per request (default %(default)s)",
    )
    parser.add_argument(
        "--max-batch-bytes", type=int, default=MAX_BATCH_BYTES, metavar="N", help=argparse.SUPPRESS
    )
    parser.add_argument("--json", action="store_true", help="print only the report, as one JSON line")
    parser.add_argument("--restart", action="store_true", help="forget the journal: send every row again")
    parser.add_argument("--format", choices=FORMATS, help="the file's format (default: detected)")
    parser.add_argument("--sheet", metavar="NAME", help="the workbook sheet to read (default: the first)")
    parser.add_argument(
        "--region", default=defaults.default_phone_region, help="default phone region (default: %(default)s)"
    )
    parser.add_argument(
        "--phone-format", default=defaults.phone_format, choices=PHONE_FORMATS, type=str.upper
    )
    add_bik_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_CANNOT_START
    quiet_for_terminal()
    say = _sayer(args.json)
    try:
        return _push(args, say)
    except CannotStart as exc:
        return _cannot_start(str(exc), args.json)
    except KeyboardInterrupt:
        say("interrupted: what BIK settled is in the journal; run the same command again to continue")
        return EXIT_INTERRUPTED


def _push(args: argparse.Namespace, say: Any) -> int:
    plain_http = allow_http(args.api_url)
    if not 1 <= args.max_in_flight <= 64 or not 1 <= args.batch_size <= 1000:
        raise CannotStart("--max-in-flight must be 1 to 64 and --batch-size 1 to 1000")
    options, reading = _options(args)
    tokens = token_provider(args)
    if plain_http:
        say(http_notice(args.api_url))
    path: Path = args.file
    try:
        record_file, reader, handle = open_file(path, options)
    except PushCannotStart as exc:
        raise CannotStart(str(exc)) from None
    with handle:
        # Before anything is sent: the rows of one person (merged, sent once), and the file's digest.
        scan = make_progress(f"scan {path.name}", path.stat().st_size, quiet=args.json)
        try:
            merger, digest = find_people(path, options, scan)
        except PushCannotStart as exc:
            raise CannotStart(str(exc)) from None
        finally:
            scan.close()
        out_dir = _out_dir(args.out or path.resolve().parent)
        journal = _journal(
            out_dir, path, Identity(digest, reading, f"{args.api_url} appId={args.app_id}"), args.restart
        )
        if journal.notice:
            say(f"{path.name}: {journal.notice}")
        client = BikClient(
            args.api_url, tokens, allow_http=plain_http, max_pool=args.max_in_flight, app_id=args.app_id
        )
        plan = PushPlan(
            path, options, args.batch_size, args.max_batch_bytes, args.max_in_flight, args.app_id, digest
        )
        progress = make_progress(f"push {path.name}", path.stat().st_size, quiet=args.json)
        outputs = Outputs(out_dir, path, record_file)
        run = PushRun(plan, client, journal, outputs, progress, merger)
        try:
            report = outputs.finish(run.run(record_file, reader))
        except BaseException:
            outputs.abandon()
            raise
        finally:
            progress.close()
            journal.close()
    report["journal"] = str(journal.path)
    _show(report, args.json)
    if run.auth_failed:
        print(f"{PROG}: {AUTH_REFUSED}", file=sys.stderr)
        return EXIT_CANNOT_START
    every_row_in = report["status"] == "complete" and not report["rejected"] and not report["failed"]
    return EXIT_OK if every_row_in else EXIT_INCOMPLETE


def _options(args: argparse.Namespace) -> tuple[ReadOptions, str]:
    try:
        mapping = read_mapping(args.mapping) if args.mapping else None
        options = ReadOptions(
            format=args.format,
            mapping=mapping,
            default_region=args.region.upper(),
            phone_format=args.phone_format,
            sheet=args.sheet,
        )
    except (MappingError, ValueError) as exc:
        raise CannotStart(str(exc)) from None
    reading = json.dumps(
        [mapping, args.format, args.sheet, args.region.upper(), args.phone_format],
        sort_keys=True,
        default=str,
    )
    return options, reading


def _out_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotStart(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def _journal(out_dir: Path, path: Path, identity: Identity, restart: bool) -> Journal:
    journal_path = output_path(out_dir, path, ".push-journal.sqlite")
    try:
        return Journal(journal_path, identity, restart=restart)
    except JournalBusy as exc:
        raise CannotStart(f"{exc}: wait for it to end") from None
    except OSError as exc:
        raise CannotStart(f"cannot open the journal {journal_path}: {exc.strerror or exc}") from None


def _sayer(quiet: bool) -> Any:
    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    return say


def _cannot_start(reason: str, as_json: bool) -> int:
    print(f"{PROG}: {reason}", file=sys.stderr)
    if as_json:
        print(json.dumps({"status": "not started", "error": reason}, ensure_ascii=False))
    return EXIT_CANNOT_START


def _show(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, ensure_ascii=False, separators=(",", ":")), flush=True)
        return
    shape = report["format"] + (f", delimiter {report['delimiter']!r}" if report["delimiter"] else "")
    print(f"{report['input']}: {shape}, {report['encoding']}: {report['status']}")
    rejected = (
        f"{report['rejected']:,} ({report['rejected_invalid']:,} invalid,"
        f" {report['rejected_by_bik']:,} refused by BIK)"
    )
    for name, value in (
        ("rows", report["rows"]),
        ("created", report["created"]),
        ("updated", report["updated"]),
    ):
        print(f"  {name:<10} {value:,}")
    print(f"  {'rejected':<10} {rejected}")
    print(f"  {'failed':<10} {report['failed']:,}")
    if report.get("duplicates"):
        print(f"  {'duplicates':<10} {report['duplicates']:,} (rows merged into another row of their person)")
    if report.get("resumed_rows"):
        print(f"  ({report['resumed_rows']:,} rows were settled by an earlier run and not sent again)")
    if report.get("error"):
        print(f"  error: {report['error']}")
    if report["reasons"]:
        print("  top reasons:")
        for reason, count in list(report["reasons"].items())[:TOP_REASONS]:
            print(f"    {count:>6}  {reason}")
    for key in ("rejects_files", "failed_files"):
        for name in report[key]:
            print(f"  {key.split('_')[0] + ':':<10} {name}")
    print(f"  {'report:':<10} {report['report']}")
