"""How fast phones of other countries are read: the normaliser of a git ref (main) beside this tree's.

    .venv/bin/python tools/phone_speed.py [--numbers 100000] [--old-ref main]

Numbers of US, GB, BR, DE, AE, SG, AU and FR (their example numbers with random last digits, so
most are valid), written in the national form with the row's country and in the international form,
are normalised by the old PhoneNormaliser (src/bik_sync/records/phones.py at --old-ref) and by this
tree's; then a CSV of them (name, phone, country) is read by open_records with each. Prints us per
number and per row (CPU time, best of three: the machine may be shared); the answers of both are
checked to be the same. Not a test: a measurement, for the issue it answers (issue 11).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import phonenumbers

import bik_sync.records.validate as validate
from bik_sync.records import open_records
from bik_sync.records.errors import FieldError
from bik_sync.records.phones import PhoneNormaliser

REGIONS = ("US", "GB", "BR", "DE", "AE", "SG", "AU", "FR")
NAMES = {"US": "United States", "GB": "United Kingdom", "BR": "Brazil", "DE": "Germany"}
ROOT = Path(__file__).resolve().parent.parent


def _old_module(ref: str) -> Any:
    source = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "show", f"{ref}:src/bik_sync/records/phones.py"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_phones.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_phones", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_phones"] = module
    spec.loader.exec_module(module)
    return module


def _numbers(count: int, seed: int = 11) -> dict[tuple[str, str], list[str]]:
    """(region, "national" | "international") -> numbers, ``count`` in all."""
    rng = random.Random(seed)
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    out: dict[tuple[str, str], list[str]] = {}
    each = count // (len(REGIONS) * 2)
    for region in REGIONS:
        examples = [phonenumbers.example_number_for_type(region, kind) for kind in kinds]
        for form in ("national", "international"):
            style = phonenumbers.PhoneNumberFormat.NATIONAL if form == "national" else 1
            written = out[region, form] = []
            for _ in range(each):
                example = rng.choice(examples)
                assert example is not None
                nsn = phonenumbers.national_significant_number(example)
                nsn = nsn[:-4] + f"{rng.randrange(10_000):04d}"
                number = phonenumbers.parse("+" + str(example.country_code) + nsn)
                written.append(phonenumbers.format_number(number, style))
    return out


def _answer(normalise: Callable[..., str | None], number: str, region: str | None) -> str | None:
    try:
        return normalise(number, "phoneNumber", region)
    except FieldError as error:
        return str(error)


def _per_number(normalise: Callable[..., str | None], numbers: list[str], region: str | None) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for number in numbers:
            try:  # noqa: SIM105 (a with block would be timed too)
                normalise(number, "phoneNumber", region)
            except FieldError:
                pass
        best = min(best, time.process_time() - start)
    return best / len(numbers) * 1e6


def _csv(numbers: dict[tuple[str, str], list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["First Name", "Last Name", "Phone", "Country"])
    for (region, _form), written in numbers.items():
        for n, number in enumerate(written):
            writer.writerow([f"Name{n}", "Surname", number, NAMES.get(region, region)])
    return buffer.getvalue().encode()


def _per_row(data: bytes) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(3):
        start = time.process_time()
        rows = sum(1 for _ in open_records(io.BytesIO(data), "phones.csv"))
        best = min(best, time.process_time() - start)
    return best / rows * 1e6, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--old-ref", default="main")
    args = parser.parse_args()
    old = _old_module(args.old_ref)
    numbers = _numbers(args.numbers)
    new_normaliser, old_normaliser = PhoneNormaliser("IN"), old.PhoneNormaliser("IN")
    totals = {"old": 0.0, "new": 0.0}
    print(f"{'region':6} {'form':13} {'old us':>8} {'new us':>8} {'x':>6}")
    for (region, form), written in numbers.items():
        row_region = region if form == "national" else None
        differ = sum(
            _answer(new_normaliser, n, row_region) != _answer(old_normaliser, n, row_region) for n in written
        )
        assert differ == 0, f"{differ} answers differ for {region} {form}"
        before = _per_number(old_normaliser, written, row_region)
        after = _per_number(new_normaliser, written, row_region)
        totals["old"] += before * len(written)
        totals["new"] += after * len(written)
        print(f"{region:6} {form:13} {before:8.2f} {after:8.2f} {before / after:6.1f}")
    count = sum(len(written) for written in numbers.values())
    print(
        f"all    {count:<13} {totals['old'] / count:8.2f} {totals['new'] / count:8.2f}"
        f" {totals['old'] / totals['new']:6.1f}"
    )
    data = _csv(numbers)
    after_row, rows = _per_row(data)
    validate.PhoneNormaliser = old.PhoneNormaliser  # type: ignore[attr-defined]
    before_row, _ = _per_row(data)
    print(
        f"open_records, {rows} rows (name, phone, country): {before_row:.2f} -> {after_row:.2f} us/row"
        f" ({before_row / after_row:.1f}x)"
    )


if __name__ == "__main__":
    main()
