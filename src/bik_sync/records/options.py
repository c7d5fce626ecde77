"""How a file or a record is read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bik_sync.records.phones import SUPPORTED_REGIONS

FORMATS = ("csv", "json", "jsonl", "xlsx")
PHONE_FORMATS = ("E164", "INTERNATIONAL", "NATIONAL")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file: its format, a column mapping, and how phones are read and written."""

    format: str | None = None  # "csv" | "json" | "jsonl" | "xlsx"; None = detect from content, name as a hint
    mapping: Mapping[str, str] | None = None  # user mapping: source column/key -> API field name
    default_region: str = "IN"
    phone_format: str = "E164"  # E164 | INTERNATIONAL | NATIONAL
    sheet: str | None = None  # a workbook's sheet by name; None = the first visible sheet

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.default_region.upper() not in SUPPORTED_REGIONS:
            raise ValueError(
                "the default phone region must be a two-letter country code such as IN,"
                f" not {self.default_region!r}"
            )
        if self.phone_format.upper() not in PHONE_FORMATS:
            raise ValueError(
                f"phone_format must be one of {', '.join(PHONE_FORMATS)}, not {self.phone_format!r}"
            )
