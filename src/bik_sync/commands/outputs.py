"""push's output files, beside the input or in --out: rejects, failed, report.

``NAME.rejects.csv`` for CSV and .xlsx input (the input's columns plus ``_row`` and ``_error``, as the
ingest Lambda writes it) or ``NAME.rejects.jsonl``; ``NAME.failed.jsonl`` (API records with ``_row``
and ``_error``, re-pushable as they are); ``NAME.report.json``. Rejects and failed are written to a
``.part`` file and renamed when the push ends, so a stopped push leaves no half file under the name;
a push with nothing to reject (or nothing failed) leaves no such file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from bik_sync.records import JsonlRejectsWriter, RecordFile, RejectsWriter, Row


def output_path(out_dir: Path, input_path: Path, suffix: str) -> Path:
    return out_dir / f"{input_path.name}{suffix}"


class Outputs:
    def __init__(self, out_dir: Path, input_path: Path, record_file: RecordFile) -> None:
        self._out_dir = out_dir
        self._input = input_path
        self._csv = record_file.format in ("csv", "xlsx")
        self.rejects_path = output_path(
            out_dir, input_path, ".rejects.csv" if self._csv else ".rejects.jsonl"
        )
        self.failed_path = output_path(out_dir, input_path, ".failed.jsonl")
        self.report_path = output_path(out_dir, input_path, ".report.json")
        self._rejects_part = self.rejects_path.with_name(self.rejects_path.name + ".part")
        self._failed_part = self.failed_path.with_name(self.failed_path.name + ".part")
        self._rejects_file: BinaryIO = self._rejects_part.open("wb")
        self._failed_file: BinaryIO = self._failed_part.open("wb")
        self._rejects = RejectsWriter(self._rejects_file, record_file)
        self._failed = JsonlRejectsWriter(self._failed_file)

    def reject(self, row: Row, reason: str | None = None) -> None:
        self._rejects.write(row, reason)

    def reject_unmatched(self, reason: str) -> None:
        """An entry BIK reported that matches no record sent: kept, with no row to blame."""
        self._rejects.write(Row(0, [] if self._csv else {}, None, (reason,)))

    def fail(self, row: Row, reason: str) -> None:
        self._failed.write(row.number, row.record or {}, reason)

    def finish(self, report: dict[str, Any]) -> dict[str, Any]:
        """Name the rejects and failed files (or remove them when empty), write the report."""
        report = {
            **report,
            "rejects_files": [
                str(p)
                for p in _keep(self._rejects_file, self._rejects_part, self.rejects_path, self._rejects.count)
            ],
            "failed_files": [
                str(p)
                for p in _keep(self._failed_file, self._failed_part, self.failed_path, self._failed.count)
            ],
            "report": str(self.report_path),
        }
        part = self.report_path.with_name(self.report_path.name + ".part")
        part.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(part, self.report_path)
        return report

    def abandon(self) -> None:
        """A stopped push: its part files go, the previous run's named files stay as they were."""
        for handle, part in (
            (self._rejects_file, self._rejects_part),
            (self._failed_file, self._failed_part),
        ):
            handle.close()
            part.unlink(missing_ok=True)


def _keep(handle: BinaryIO, part: Path, final: Path, count: int) -> list[Path]:
    handle.close()
    if not count:
        part.unlink(missing_ok=True)
        final.unlink(missing_ok=True)  # an earlier run's file no longer says anything true
        return []
    os.replace(part, final)
    return [final]
