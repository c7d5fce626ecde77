"""`bik-sync validate FILE`: read and validate a customers file offline, as the ingest would.

No network and no AWS: the same record core as the Lambda reads the file, so what this command
says about a row is what the ingest will do with it. Exit codes: 0 every row is valid, 1 some rows
are rejected, 2 the file (or the mapping file) cannot be read at all, or not to its end (damage part
way: the summary counts the rows before it, as the ingest's report does, and says where it stopped).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from bik_sync.duplicates import DuplicateMerger, Sent
from bik_sync.records import ReadOptions, RecordFile, RejectsWriter, UnreadableFile
from bik_sync.records.errors import RefusedWhole
from bik_sync.records.formats import open_records
from bik_sync.records.options import FORMATS, PHONE_FORMATS
from bik_sync.storage import MappingError, read_mapping

EXIT_VALID, EXIT_REJECTED, EXIT_UNREADABLE = 0, 1, 2
TOP_REASONS = 5


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        print(f"bik-sync validate: {message}", file=sys.stderr)
        raise SystemExit(EXIT_UNREADABLE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bik-sync validate", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("file", help="a CSV, JSON, JSON lines or .xlsx file, optionally gzip-compressed")
    parser.add_argument("--mapping", metavar="M", help='a JSON mapping file: {"source column": "apiField"}')
    parser.add_argument("--rejects", metavar="OUT", help="write the rejected rows here (CSV or JSON lines)")
    parser.add_argument(
        "--records",
        metavar="OUT",
        help="write every record here as it would be sent to BIK (rows of one person merged, at the "
        "last row): JSON lines, each with its _row",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument("--format", choices=FORMATS, help="the file's format (default: detected)")
    parser.add_argument("--sheet", metavar="NAME", help="the workbook sheet to read (default: the first)")
    parser.add_argument("--region", default="IN", help="default phone region, ISO code (default: IN)")
    parser.add_argument(
        "--phone-format", default="E164", choices=PHONE_FORMATS, type=str.upper, help="default: E164"
    )
    return parser


def _fail(message: str) -> int:
    print(f"bik-sync validate: {message}", file=sys.stderr)
    return EXIT_UNREADABLE


@dataclass
class _Tally:
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    duplicates: int = 0  # valid rows merged into an earlier row of the same person
    reasons: Counter[str] = field(default_factory=Counter)
    error: str = ""  # why reading stopped before the end (damage); the rows before it are counted


def _options(args: argparse.Namespace) -> ReadOptions:
    """Raises MappingError or ValueError with a message for the user."""
    # A local file: s3:// mappings are the Lambda's.
    mapping = read_mapping(args.mapping) if args.mapping else None
    return ReadOptions(
        format=args.format,
        mapping=mapping,
        default_region=args.region.upper(),
        phone_format=args.phone_format,
        sheet=args.sheet,
    )


def _read(
    record_file: RecordFile, merger: DuplicateMerger, rejects: BinaryIO | None, records: TextIO | None
) -> _Tally:
    """Count every row; write rejected rows to ``rejects`` and what would be sent to ``records``."""
    tally = _Tally()
    writer = RejectsWriter(rejects, record_file) if rejects else None
    try:
        for row in record_file:
            tally.rows += 1
            if row.record is None:
                tally.rejected += 1
                tally.reasons.update(row.errors)
                if writer:
                    writer.write(row)
            else:
                tally.valid += 1
                _write_records(records, merger.feed(row.number, row.record))
    except RefusedWhole:
        raise
    except UnreadableFile as exc:  # damage part way: the rows before it stand, as in the ingest
        tally.error = str(exc)
    _write_records(records, merger.flush())
    tally.duplicates = merger.duplicates
    return tally


def _write_records(records: TextIO | None, sent: Sent) -> None:
    """What would be sent to BIK, with the row number the rejects use (a person's last row)."""
    if records is None:
        return
    for number, record in sent:
        records.write(json.dumps({"_row": number, **record}, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_UNREADABLE
    try:
        options = _options(args)
    except (MappingError, ValueError) as exc:
        return _fail(str(exc))
    path = Path(args.file)
    try:
        handle = path.open("rb")
    except OSError as exc:
        return _fail(f"cannot open {args.file}: {exc.strerror or exc}")
    try:
        with ExitStack() as outputs, handle:
            # Two passes, as the ingest reads it: the first finds the rows of one person.
            merger = DuplicateMerger.from_rows(open_records(handle, path.name, options))
            again = outputs.enter_context(path.open("rb"))
            record_file = open_records(again, path.name, options)
            rejects = outputs.enter_context(Path(args.rejects).open("wb")) if args.rejects else None
            records = (
                outputs.enter_context(Path(args.records).open("w", encoding="utf-8"))
                if args.records
                else None
            )
            tally = _read(record_file, merger, rejects, records)
    except UnreadableFile as exc:
        return _fail(f"{args.file}: {exc}")
    except OSError as exc:
        return _fail(f"cannot read {args.file} or write the outputs: {exc.strerror or exc}")

    summary: dict[str, Any] = {
        "file": args.file,
        "format": record_file.format,
        "encoding": record_file.encoding,
        "delimiter": record_file.delimiter,
        "rows": tally.rows,
        "valid": tally.valid,
        "rejected": tally.rejected,
        "duplicates": tally.duplicates,
        "reasons": dict(tally.reasons.most_common()),
        "ignored_columns": record_file.ignored_columns,
        "notes": record_file.notes,
        "rejects": args.rejects,
        "records": args.records,
    }
    if tally.error:
        summary["error"] = f"reading stopped: {tally.error}"
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        _print_summary(summary, tally.reasons)
    if tally.error:
        return _fail(f"{args.file}: reading stopped after row {tally.rows}: {tally.error}")
    return EXIT_REJECTED if tally.rejected else EXIT_VALID


def _print_summary(summary: dict[str, Any], reasons: Counter[str]) -> None:
    shape = summary["format"] + (f", delimiter {summary['delimiter']!r}" if summary["delimiter"] else "")
    print(f"{summary['file']}: {shape}, {summary['encoding']}")
    print(f"  rows      {summary['rows']}")
    print(f"  valid     {summary['valid']}")
    print(f"  rejected  {summary['rejected']}")
    if summary["duplicates"]:
        sent = summary["valid"] - summary["duplicates"]
        print(f"  duplicates {summary['duplicates']} (rows of a person met earlier: {sent} records to send)")
    if reasons:
        print("  top reasons:")
        for reason, count in reasons.most_common(TOP_REASONS):
            print(f"    {count:>6}  {reason}")
        if len(reasons) > TOP_REASONS:
            print(f"    ... and {len(reasons) - TOP_REASONS} more")
    if summary["ignored_columns"]:
        print(f"  ignored columns: {', '.join(summary['ignored_columns'])}")
    for note in summary["notes"]:
        print(f"  note: {note}")
    if "error" in summary:
        print(f"  error: {summary['error']} (the rows above are those before it)")
    if summary["rejects"]:
        print(f"  rejects written to {summary['rejects']}")
    if summary["records"]:
        print(f"  records written to {summary['records']}")
