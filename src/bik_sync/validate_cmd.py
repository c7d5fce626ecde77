"""`bik-sync validate FILE`: read and validate a customers file offline, as the ingest would.

No network and no AWS: the same record core as the Lambda reads the file, so what this command
says about a row is what the ingest will do with it. Exit codes: 0 every row is valid, 1 some rows
are rejected, 2 the file (or the mapping file) cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bik_sync.records import ReadOptions, RejectsWriter, UnreadableFile, open_records
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


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_UNREADABLE

    mapping = None
    if args.mapping:
        try:
            mapping = read_mapping(args.mapping)  # a local file: s3:// mappings are the Lambda's
        except MappingError as exc:
            return _fail(str(exc))
    try:
        options = ReadOptions(
            format=args.format,
            mapping=mapping,
            default_region=args.region.upper(),
            phone_format=args.phone_format,
            sheet=args.sheet,
        )
    except ValueError as exc:
        return _fail(str(exc))

    path = Path(args.file)
    try:
        handle = path.open("rb")
    except OSError as exc:
        return _fail(f"cannot open {args.file}: {exc.strerror or exc}")

    reasons: Counter[str] = Counter()
    rows = valid = rejected = 0
    rejects_path = Path(args.rejects) if args.rejects else None
    try:
        with handle:
            record_file = open_records(handle, path.name, options)
            rejects_out = rejects_path.open("wb") if rejects_path else None
            try:
                writer = RejectsWriter(rejects_out, record_file) if rejects_out else None
                for row in record_file:
                    rows += 1
                    if row.errors:
                        rejected += 1
                        reasons.update(row.errors)
                        if writer:
                            writer.write(row)
                    else:
                        valid += 1
            finally:
                if rejects_out:
                    rejects_out.close()
    except UnreadableFile as exc:
        return _fail(f"{args.file}: {exc}")
    except OSError as exc:
        return _fail(f"cannot read {args.file} or write the rejects: {exc.strerror or exc}")

    summary: dict[str, Any] = {
        "file": args.file,
        "format": record_file.format,
        "encoding": record_file.encoding,
        "delimiter": record_file.delimiter,
        "rows": rows,
        "valid": valid,
        "rejected": rejected,
        "reasons": dict(reasons.most_common()),
        "ignored_columns": record_file.ignored_columns,
        "rejects": str(rejects_path) if rejects_path else None,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        _print_summary(summary, reasons)
    return EXIT_REJECTED if rejected else EXIT_VALID


def _print_summary(summary: dict[str, Any], reasons: Counter[str]) -> None:
    shape = summary["format"] + (f", delimiter {summary['delimiter']!r}" if summary["delimiter"] else "")
    print(f"{summary['file']}: {shape}, {summary['encoding']}")
    print(f"  rows      {summary['rows']}")
    print(f"  valid     {summary['valid']}")
    print(f"  rejected  {summary['rejected']}")
    if reasons:
        print("  top reasons:")
        for reason, count in reasons.most_common(TOP_REASONS):
            print(f"    {count:>6}  {reason}")
        if len(reasons) > TOP_REASONS:
            print(f"    ... and {len(reasons) - TOP_REASONS} more")
    if summary["ignored_columns"]:
        print(f"  ignored columns: {', '.join(summary['ignored_columns'])}")
    if summary["rejects"]:
        print(f"  rejects written to {summary['rejects']}")
