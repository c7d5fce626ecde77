"""Ingest throughput: the real ingest loop over two 1M-row CSVs, beside raw ``csv.reader`` on each.

Two files of ``BIK_BENCH_INGEST_ROWS`` rows (1,000,000 by default) are generated into a temporary
folder: a Shopify customers export (Indian customers, guard apostrophes on ids and phones as Shopify
writes them, a few bad rows), and a CRM contacts export (HubSpot's column names) whose people live
in a dozen countries, with a country column and phones in national and international forms.

Each run is ``ingest_object`` as the Lambda calls it, both passes included (pass 1 finds rows of one
person, pass 2 builds, encodes, packs, signs and sends), over in-memory ports: the object read from
the local file, a job store that keeps nothing, and the real SQS adapter over a client that only
counts the messages and bytes it is sent. All timings are taken in the same run, interleaved, best
of ``BIK_BENCH_INGEST_REPEATS`` (2):

- ``ingest_ratio``: ingest rows/s over csv.reader rows/s, Shopify file (target >= 0.25, aim 1/3);
- ``ingest_intl_ratio``: the same over the international file (target >= 0.2);
- ``core_ratio``: the record core alone (read, map, normalise, validate: one pass, nothing encoded
  or sent) over csv.reader, Shopify file; ``core_intl_ratio`` the same over the international file.
  The whole loop can only be slower than its core: these are the ceilings of the two figures above;
- ``ingest_sqs_ratio``: ``ingest_ratio`` again with a client that takes
  ``BIK_BENCH_INGEST_SQS_MS`` (20) ms per SendMessageBatch, as SQS does: what the reading loses to
  the queue's round trips (nothing, when sending keeps up in the background).
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from bik_sync.ingest import IngestDeps, ingest_object
from bik_sync.job_state import BatchCounts, BatchStatus, JobState, StartOutcome, UploadOrder
from bik_sync.observability import quiet_for_terminal
from bik_sync.ports import ObjectMissing, StoredObject
from bik_sync.records.formats import open_records
from bik_sync.s3_events import S3ObjectRef
from bik_sync.settings import IngestSettings
from bik_sync.work_queue import SqsWorkQueue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

ROWS_ENV = "BIK_BENCH_INGEST_ROWS"
REPEATS_ENV = "BIK_BENCH_INGEST_REPEATS"
SQS_MS_ENV = "BIK_BENCH_INGEST_SQS_MS"
DEFAULT_ROWS = 1_000_000
BUCKET = "bik-sync-bench"

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


INTL_COLUMNS = [
    "Record ID",
    "First Name",
    "Last Name",
    "Email",
    "Mobile Phone Number",
    "City",
    "Country/Region",
    "Create Date",
    "Lifecycle Stage",
]


@dataclass(frozen=True, slots=True)
class Country:
    """How a country's mobiles are written: the national significant number's digits fill the Xs."""

    code: str
    name: str
    cities: tuple[str, ...]
    mobile: Callable[[random.Random], str]  # a national significant number (valid mobile range)
    national: str  # the trunk prefix (0) where the country dials one, then the number's groups
    international: str


def _digits(rng: random.Random, count: int) -> str:
    return str(rng.randrange(10**count)).zfill(count)


COUNTRIES = (
    Country(
        "US",
        "United States",
        ("New York", "San Francisco", "Chicago"),
        lambda r: (
            r.choice(("212", "415", "646", "312", "617", "713")) + str(r.randrange(200, 1000)) + _digits(r, 4)
        ),
        "(XXX) XXX-XXXX",
        "+1 XXX-XXX-XXXX",
    ),
    Country(
        "GB",
        "United Kingdom",
        ("London", "Manchester", "Leeds"),
        lambda r: "7" + r.choice("4589") + _digits(r, 8),
        "0XXXX XXXXXX",
        "+44 XXXX XXXXXX",
    ),
    Country(
        "BR",
        "Brazil",
        ("São Paulo", "Rio de Janeiro", "Belo Horizonte"),
        lambda r: r.choice(("11", "21", "31", "41", "51", "61")) + "9" + _digits(r, 8),
        "(XX) XXXXX-XXXX",
        "+55 XX XXXXX-XXXX",
    ),
    Country(
        "DE",
        "Germany",
        ("Berlin", "München", "Köln"),
        lambda r: "17" + _digits(r, 8),
        "0XXX XXXXXXX",
        "+49 XXX XXXXXXX",
    ),
    Country(
        "FR",
        "France",
        ("Paris", "Lyon", "Marseille"),
        lambda r: "6" + r.choice("0124578") + _digits(r, 7),
        "0X XX XX XX XX",
        "+33 X XX XX XX XX",
    ),
    Country(
        "AE",
        "United Arab Emirates",
        ("Dubai", "Abu Dhabi", "Sharjah"),
        lambda r: "5" + r.choice("024568") + _digits(r, 7),
        "0XX XXX XXXX",
        "+971 XX XXX XXXX",
    ),
    Country(
        "SG",
        "Singapore",
        ("Singapore",),
        lambda r: "9" + r.choice("012345678") + _digits(r, 6),
        "XXXX XXXX",
        "+65 XXXX XXXX",
    ),
    Country(
        "AU",
        "Australia",
        ("Sydney", "Melbourne", "Brisbane"),
        lambda r: "4" + r.choice("0123") + _digits(r, 7),
        "0XXX XXX XXX",
        "+61 XXX XXX XXX",
    ),
    Country(
        "ZA",
        "South Africa",
        ("Johannesburg", "Cape Town", "Durban"),
        lambda r: "8" + r.choice("1234") + _digits(r, 7),
        "0XX XXX XXXX",
        "+27 XX XXX XXXX",
    ),
    Country(
        "MX",
        "Mexico",
        ("Ciudad de México", "Guadalajara", "Monterrey"),
        lambda r: r.choice(("55", "33", "81")) + _digits(r, 8),
        "XX XXXX XXXX",
        "+52 XX XXXX XXXX",
    ),
    Country(
        "ID",
        "Indonesia",
        ("Jakarta", "Surabaya", "Bandung"),
        lambda r: "81" + r.choice("1235") + _digits(r, 8),
        "0XXX-XXXX-XXXX",
        "+62 XXX-XXXX-XXXX",
    ),
    Country(
        "IN",
        "India",
        ("Mumbai", "Bengaluru", "Delhi"),
        lambda r: r.choice("6789") + _digits(r, 9),
        "0XXXXX XXXXX",
        "+91 XXXXX XXXXX",
    ),
)
INTL_FIRST = ["Emma", "Lucas", "Sofia", "Noah", "Aisha", "Wei", "Priya", "Mateo", "Chloé", "Jürgen"]
INTL_LAST = ["Smith", "Silva", "Müller", "Martin", "Khan", "Tan", "Nguyen", "García", "Sharma", "Dlamini"]
STAGES = ["lead", "subscriber", "customer", "opportunity"]


def _fill(pattern: str, digits: str) -> str:
    numbers = iter(digits)
    return "".join(next(numbers) if char == "X" else char for char in pattern)


def intl_rows(count: int, seed: int = 11) -> Iterator[list[str]]:
    """Yield ``count`` contacts rows over the dozen countries; about 1 in 500 is bad.

    Phones are written half in the national form (no country code: the country column tells
    whose), the rest in the international one or as E.164; the country is its name mostly, its
    two-letter code in one row of five, as CRMs hold them.
    """
    rng = random.Random(seed)
    for n in range(count):
        country = rng.choice(COUNTRIES)
        number = country.mobile(rng)
        form = rng.random()
        if form < 0.5:
            phone = _fill(country.national, number)
        elif form < 0.85:
            phone = _fill(country.international, number)
        else:
            phone = _fill(country.international, number).replace(" ", "").replace("-", "")
        first, last = rng.choice(INTL_FIRST), rng.choice(INTL_LAST)
        email = f"{first.lower().encode('ascii', 'ignore').decode()}.{n}@example.com"
        if n % 500 == 499:
            email = email.replace("@", "")  # a bad email
        yield [
            str(90_000_000 + n),
            first,
            last if n % 700 != 3 else "",
            email,
            phone,
            rng.choice(country.cities),
            country.code if n % 5 == 0 else country.name,
            f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} {rng.randrange(24):02d}:00",
            rng.choice(STAGES),
        ]


def write_intl_file(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(INTL_COLUMNS)
        writer.writerows(intl_rows(count))


class CountingSqs:
    """An SQS client whose SendMessageBatch only counts the messages and bytes it is sent, after
    ``latency_s`` (SQS's round trip, when the bench wants one)."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.calls = 0
        self.messages = 0
        self.bytes = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[Mapping[str, str]]) -> dict[str, Any]:
        if self.latency_s:
            time.sleep(self.latency_s)
        self.calls += 1
        self.messages += len(Entries)
        self.bytes += sum(len(entry["MessageBody"].encode()) for entry in Entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


class FileObjects:
    """The object store over local files: inputs by key; outputs counted, not kept."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self._files = dict(files)
        self.put = 0

    def open(self, bucket: str, key: str, *, version_id: str = "", start: int = 0) -> StoredObject:
        path = self._files.get(key)
        if path is None:
            raise ObjectMissing(key)
        body = path.open("rb")
        body.seek(start)
        stat = path.stat()
        return StoredObject(
            body=body, version_id="", etag=f"bench-{stat.st_size}", last_modified=float(int(stat.st_mtime))
        )

    def put_file(self, bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
        fileobj.seek(0)
        while fileobj.read(1 << 20):
            pass
        self.put += 1

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.put += 1

    def delete(self, bucket: str, key: str) -> None:
        pass


class NoJobs:
    """A job store that keeps nothing: every job starts, none is ever complete (no report)."""

    def start(
        self,
        job_id: str,
        *,
        bucket: str,
        key: str,
        source: str,
        lease_s: float,
        run: str = "",
        order: UploadOrder | None = None,
    ) -> StartOutcome:
        return StartOutcome.STARTED

    def renew(self, job_id: str, *, lease_s: float) -> None:
        pass

    def release(self, job_id: str) -> None:
        pass

    def checkpoint(self, job_id: str, *, checkpoint: str, rows: int, rejected: int, batches: int) -> None:
        raise AssertionError("the bench's files are read in one invocation")

    def resume(self, job_id: str, *, lease_s: float) -> StartOutcome:
        return StartOutcome.DONE

    def finish_ingest(
        self,
        job_id: str,
        *,
        rows: int,
        rejected: int,
        batches: int,
        rejects_keys: Iterable[str] = (),
        details: dict[str, Any] | None = None,
    ) -> JobState:
        return JobState(
            job_id, BUCKET, "", "s3", self.now_iso(), ingest_done=True, batches_total=batches or 1
        )

    def open_message_job(self, job_id: str, *, bucket: str, key: str, rows: int) -> None:
        pass

    def batch_status(self, job_id: str, batch: int) -> BatchStatus:
        return BatchStatus(counted=False)

    def save_progress(self, job_id: str, batch: int, digest: str, progress: str) -> None:
        pass

    def record_batch(self, job_id: str, batch: int, counts: BatchCounts) -> JobState | None:
        return None

    def add_reasons(self, job_id: str, counts: Mapping[str, int]) -> None:
        pass

    def claim_report(self, job_id: str) -> bool:
        return False

    def get(self, job_id: str) -> JobState | None:
        return None

    def now_iso(self) -> str:
        return "2026-12-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Timed:
    rows: int
    rejected: int
    seconds: float
    messages: int = 0
    sent_mb: float = 0.0


def _time_csv_reader(path: Path) -> Timed:
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    return Timed(rows, 0, time.perf_counter() - start)


def _time_core(path: Path) -> Timed:
    """The record core alone, one pass: read, map, normalise, validate."""
    rows = rejected = 0
    start = time.perf_counter()
    with path.open("rb") as handle:
        for row in open_records(handle, path.name):
            rows += 1
            if row.errors:
                rejected += 1
    return Timed(rows, rejected, time.perf_counter() - start)


def _time_ingest(path: Path, latency_s: float = 0.0) -> Timed:
    """``ingest_object`` as the Lambda calls it, over local files and a counting SQS client."""
    key = f"incoming/bench/{path.name}"
    sqs = CountingSqs(latency_s)
    deps = IngestDeps(
        settings=IngestSettings(
            work_queue_url="counting",
            jobs_table_name="unused",
            job_signing_secret_id="unused",  # noqa: S106 - the key is given below
        ),
        objects=FileObjects({key: path}),
        queue=SqsWorkQueue(cast("SQSClient", sqs), "counting"),
        jobs=NoJobs(),
        signing_key=lambda: b"bench-signing-key-of-thirty-two-bytes",
    )
    start = time.perf_counter()
    result = ingest_object(S3ObjectRef(bucket=BUCKET, key=key), deps)
    seconds = time.perf_counter() - start
    if result.status != "queued":
        raise RuntimeError(f"ingest of the bench file ended {result.status!r}")
    return Timed(result.rows, result.rejected, seconds, sqs.messages, round(sqs.bytes / 1e6, 1))


def _best(timings: Iterable[Timed]) -> Timed:
    return min(timings, key=lambda timed: timed.seconds)


def _rate(timed: Timed) -> float:
    return timed.rows / timed.seconds


def run() -> dict[str, Any]:
    count = int(os.environ.get(ROWS_ENV, DEFAULT_ROWS))
    repeats = max(1, int(os.environ.get(REPEATS_ENV, "2")))
    latency_s = float(os.environ.get(SQS_MS_ENV, "20")) / 1000
    quiet_for_terminal()  # ingest's log lines and metrics would land among the bench's JSON lines
    runs: dict[str, list[Timed]] = {}
    with tempfile.TemporaryDirectory(prefix="bik-bench-") as folder:
        shopify, intl = Path(folder) / "customers_export.csv", Path(folder) / "contacts_intl.csv"
        write_file(shopify, count)
        write_intl_file(intl, count)
        sizes = (shopify.stat().st_size, intl.stat().st_size)
        timers: list[tuple[str, Callable[[], Timed]]] = [
            ("csv", lambda: _time_csv_reader(shopify)),
            ("core", lambda: _time_core(shopify)),
            ("ingest", lambda: _time_ingest(shopify)),
            ("ingest_sqs", lambda: _time_ingest(shopify, latency_s)),
            ("csv_intl", lambda: _time_csv_reader(intl)),
            ("core_intl", lambda: _time_core(intl)),
            ("ingest_intl", lambda: _time_ingest(intl)),
        ]
        # Interleaved, best of each: the machine's noise hits every reader alike.
        for _ in range(repeats):
            for name, timer in timers:
                runs.setdefault(name, []).append(timer())
    best = {name: _best(timings) for name, timings in runs.items()}
    csv_rate, csv_intl_rate = _rate(best["csv"]), _rate(best["csv_intl"])
    ingest, intl_run = best["ingest"], best["ingest_intl"]
    return {
        "rows": ingest.rows,
        "file_mb": round(sizes[0] / 1e6, 1),
        "intl_file_mb": round(sizes[1] / 1e6, 1),
        "valid": ingest.rows - ingest.rejected,
        "rejected": ingest.rejected,
        "intl_valid": intl_run.rows - intl_run.rejected,
        "intl_rejected": intl_run.rejected,
        "messages": ingest.messages,
        "sent_mb": ingest.sent_mb,
        "csv_reader_rows_per_s": round(csv_rate),
        "core_rows_per_s": round(_rate(best["core"])),
        "ingest_rows_per_s": round(_rate(ingest)),
        "ingest_sqs_rows_per_s": round(_rate(best["ingest_sqs"])),
        "core_intl_rows_per_s": round(_rate(best["core_intl"])),
        "ingest_intl_rows_per_s": round(_rate(intl_run)),
        "core_ratio": round(_rate(best["core"]) / csv_rate, 3),
        "ingest_ratio": round(_rate(ingest) / csv_rate, 3),
        "ingest_sqs_ratio": round(_rate(best["ingest_sqs"]) / csv_rate, 3),
        "sqs_ms": round(latency_s * 1000),
        "core_intl_ratio": round(_rate(best["core_intl"]) / csv_intl_rate, 3),
        "ingest_intl_ratio": round(_rate(intl_run) / csv_intl_rate, 3),
    }
