"""Ingest throughput: open_records over a Shopify-shaped CSV beside raw ``csv.reader`` on it.

The file (``BIK_BENCH_INGEST_ROWS`` rows, 1,000,000 by default) is generated on the fly into a
temporary file in the current Shopify customers export layout, with guard apostrophes on ids and
phones as Shopify writes them and a few bad rows. Both readers run on the same file in the same
run, interleaved, best of ``BIK_BENCH_INGEST_REPEATS`` (2); ``ingest_ratio`` is ingest rows/s over
csv.reader rows/s (target >= 0.2, aim 0.33).
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bik_sync.records import open_records

ROWS_ENV = "BIK_BENCH_INGEST_ROWS"
REPEATS_ENV = "BIK_BENCH_INGEST_REPEATS"
DEFAULT_ROWS = 1_000_000

SHOPIFY_COLUMNS = [
    "Customer ID",
    "First Name",
    "Last Name",
    "Email",
    "Accepts Email Marketing",
    "Default Address Company",
    "Default Address Address1",
    "Default Address Address2",
    "Default Address City",
    "Default Address Province Code",
    "Default Address Country Code",
    "Default Address Zip",
    "Default Address Phone",
    "Phone",
    "Accepts SMS Marketing",
    "Total Spent",
    "Total Orders",
    "Note",
    "Tax Exempt",
    "Tags",
]
FIRST = ["Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Ishaan", "Meera"]
LAST = ["Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Das", "Menon", "Joshi"]
CITIES = [("Mumbai", "MH"), ("Bengaluru", "KA"), ("Delhi", "DL"), ("Chennai", "TN"), ("Pune", "MH")]
TAGS = ["", "vip", "repeat, newsletter", "cod", "wholesale, vip"]


def shopify_rows(count: int, seed: int = 7) -> Any:
    """Yield ``count`` Shopify-layout rows (lists of cells); about 1 in 500 is bad."""
    rng = random.Random(seed)
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, province = rng.choice(CITIES)
        mobile = f"{rng.choice('6789')}{rng.randrange(10**8, 10**9)}"
        email = f"{first.lower()}.{last.lower()}{n}@example.in"
        if n % 500 == 499:
            email = email.replace("@", "")  # a bad email
        yield [
            f"'{7_000_000_000_000 + n}",
            first,
            last if n % 700 != 3 else "",
            email,
            rng.choice(("yes", "no")),
            "",
            f"{rng.randrange(1, 999)} MG Road",
            "",
            city,
            province,
            "IN",
            f"{rng.randrange(110001, 800000)}",
            f"'+91{mobile}" if n % 3 else "",
            f"'+91{mobile}",
            rng.choice(("yes", "no")),
            f"{rng.randrange(0, 50000)}.00",
            str(rng.randrange(0, 40)),
            "",
            "no",
            rng.choice(TAGS),
        ]


def write_file(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SHOPIFY_COLUMNS)
        writer.writerows(shopify_rows(count))


def _time_csv_reader(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    return rows, time.perf_counter() - start


def _time_ingest(path: Path) -> tuple[int, int, float]:
    valid = rejected = 0
    start = time.perf_counter()
    with path.open("rb") as handle:
        for row in open_records(handle, path.name):
            if row.errors:
                rejected += 1
            else:
                valid += 1
    return valid, rejected, time.perf_counter() - start


def run() -> dict[str, Any]:
    count = int(os.environ.get(ROWS_ENV, DEFAULT_ROWS))
    repeats = max(1, int(os.environ.get(REPEATS_ENV, "2")))
    with tempfile.TemporaryDirectory(prefix="bik-bench-") as folder:
        path = Path(folder) / "customers_export.csv"
        write_file(path, count)
        size = path.stat().st_size
        # Interleaved, best of each: the machine's noise hits both readers alike.
        csv_seconds = ingest_seconds = float("inf")
        for _ in range(repeats):
            raw_rows, seconds = _time_csv_reader(path)
            csv_seconds = min(csv_seconds, seconds)
            valid, rejected, seconds = _time_ingest(path)
            ingest_seconds = min(ingest_seconds, seconds)

    ingest_rate = (valid + rejected) / ingest_seconds
    csv_rate = raw_rows / csv_seconds
    return {
        "rows": valid + rejected,
        "columns": len(SHOPIFY_COLUMNS),
        "file_mb": round(size / 1e6, 1),
        "valid": valid,
        "rejected": rejected,
        "ingest_rows_per_s": round(ingest_rate),
        "csv_reader_rows_per_s": round(csv_rate),
        "ingest_ratio": round(ingest_rate / csv_rate, 3),
    }
