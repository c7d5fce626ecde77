"""The CSV plan: one header's columns bound once, and ``build(cells)`` generated for them.

``build`` is the ingest inner loop: straight-line code per mapped field with the common cases
inline and the rest delegated to the converters ``check_object`` uses (see ``CsvPlan``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from bik_sync.records.dates import ISO_DATES, DateReader, slash_date_order, to_date
from bik_sync.records.errors import FieldError, UnreadableFile
from bik_sync.records.fields import PHONE_FIELDS, REJECT_KEYS, REQUIRED_FIELDS, from_column
from bik_sync.records.mapping import FULL_NAME, name_key
from bik_sync.records.normalise import (
    BOOLEAN_WORDS,
    PLACEHOLDERS,
    clean,
    email_match,
    to_boolean,
    to_country,
    to_email,
    to_identifier,
    to_tags,
    to_text,
)
from bik_sync.records.phones import NO_COUNTRY, RowCountry
from bik_sync.records.validate import (
    FIELD_ORDER,
    NAME_FIELDS,
    Result,
    complete_names,
    finish,
    in_field_order,
    row_country,
    value_country,
)

if TYPE_CHECKING:
    from bik_sync.records.validate import RecordBuilder

_email_match: Final = email_match
# An Indian mobile already in E.164 as exports write it: "+91", a mobile series digit, 9 more (ASCII).
_e164_mobile: Final = re.compile(r"\+91[6-9][0-9]{9}").fullmatch
# Booleans as exports write them, looked up on the raw cell before any cleaning.
_FAST_BOOLEANS: Final[dict[str, bool]] = {
    variant: value
    for word, value in BOOLEAN_WORDS.items()
    for variant in (word, word.upper(), word.capitalize())
}
_SPECIAL_FIRST: Final = frozenset({"'", *(word[:1] for word in PLACEHOLDERS)})


class CsvPlan:
    """Per-column converters bound once for a header; ``build(cells)`` is the ingest inner loop.

    ``build`` is generated for the header: one straight-line block per mapped field with the
    common cases (clean text, yes/no, +91 mobiles) inline and the rest delegated to the same
    converters ``check_object`` uses, so a file row and a queue record cannot disagree.

    A column whose name repeats an earlier mapped one (HubSpot's second "Phone Number") is not
    merged into it: it is ignored and listed with its position, unless the mapping names it by
    position (``"#14"``). ``sample_rows`` (the first rows of the file) decide its slash-date order.
    """

    __slots__ = ("build", "field_columns", "ignored", "names", "width")

    def __init__(
        self, builder: RecordBuilder, columns: Sequence[str], sample_rows: Sequence[Sequence[str]] = ()
    ) -> None:
        self.width = len(columns)
        self.names = list(columns)
        by_field: dict[str, list[tuple[int, int]]] = {}
        self.ignored: list[str] = []
        mapped_keys: set[str] = set()
        mapper = builder.mapper
        for index, name in enumerate(columns):
            target = mapper.by_position(index + 1)
            if target is False:  # not named by position: by its header
                if name in REJECT_KEYS:
                    continue
                target = mapper.target(name) if name else None
                if target is None:
                    if not mapper.explicitly_ignored(name):
                        self.ignored.append(name or f"(column {index + 1})")
                    continue
                key = name_key(name)
                if key in mapped_keys:
                    self.ignored.append(f"{name} (column {index + 1})")
                    continue
                mapped_keys.add(key)
            if not isinstance(target, tuple):
                continue  # the mapping ignores this column by position
            by_field.setdefault(target[0], []).append((target[1], index))
        self.field_columns: dict[str, tuple[int, ...]] = {
            field: tuple(index for _, index in sorted(found))
            for field, found in sorted(by_field.items(), key=lambda item: _field_rank(item[0]))
        }
        has_names = FULL_NAME in self.field_columns or all(f in self.field_columns for f in NAME_FIELDS)
        if not has_names:
            missing = [field for field in REQUIRED_FIELDS if field not in self.field_columns]
            # The header is not echoed: in a file without one, it is a customer's data.
            what = " or ".join(missing)
            raise UnreadableFile(
                f"no column maps to {what} ({len(columns)} columns; is the first row a header?); name the "
                "columns 'First Name'/'Last Name' (or 'Name' for the whole name) or give a mapping file"
            )
        date_columns = [i for field in ("createdAt", "updatedAt") for i in self.field_columns.get(field, ())]
        if date_columns and sample_rows:
            values = (row[i] for row in sample_rows for i in date_columns if i < len(row))
            builder.dates = DateReader(slash_date_order(values), builder.dates.default_region)
        self.build: Callable[[list[str]], Result] = _compile(self.field_columns, self.names, builder)


def _field_rank(field: str) -> int:
    return FIELD_ORDER.get(field, len(FIELD_ORDER))


# Code templates: each turns the cell ``CELL`` into ``x`` or raises _FieldError. The common case is
# inline; anything unusual goes to the shared converters. Text-like templates leave ``x`` falsy ("" or
# None) when the cell cleans to nothing; the others leave None (a boolean may be False).
# A cell that may need more than a trim starts with a guard apostrophe or a placeholder's first
# character ("null", "N/A", "-", "#N/A", "(blank)"): one look at the first character sorts them out.
_TEXT_CODE = """\
x = CELL.strip()
if x[:1] in _SPECIAL:
    x = CONVERT(x, FIELD)
"""
_IDENTIFIER_CODE = """\
x = CELL.strip()
if x[:1] in _SPECIAL or "+" in x or "." in x or "," in x:  # 7.02255E+12, 7,02E+12, 7.02e12
    x = _to_identifier(x, FIELD)
"""
# A cell that does not match goes to ``to_email`` too: it reads Google's " ::: " or raises its message.
_EMAIL_CODE = """\
x = CELL.strip().lower()
if x[:1] in _SPECIAL or (x and _email_match(x) is None):
    x = _to_email(x, FIELD)
"""
# The rest are run on a non-empty cell ``v``.
_BOOLEAN_CODE = """\
x = _BOOLEANS.get(v)
if x is None:
    x = _to_boolean(v, FIELD)
"""
_PHONE_CODE = """\
if _e164_mobile(v) is not None:
    x = INDIAN
else:
    if country is None:
        country = _country_of_row(cells)
    x = _phone(v, FIELD, country.phone_region, country.no_region_reason)
"""
_TAGS_CODE = """\
x = _TAG_SETS.get(v)
if x is None:
    x = _tag_set(v, FIELD)
x = list(x) if x else None
"""
# A date written as ISO writes it reads the same in any row: a cell read before is not read again.
_DATE_CODE = """\
x = _ISO_DATES.get(v)
if x is None:
    if country is None:
        country = _country_of_row(cells)
    x = _dates(v, FIELD, country.region)
"""
_CALL_CODE = "x = CONVERT(v, FIELD)\n"
_NON_EMPTY_CODE = """\
v = CELL
if v:
CONVERSION
else:
    x = None
"""
_TAG_SETS: dict[str, tuple[str, ...]] = {}


def _tag_set(text: str, field: str) -> tuple[str, ...]:
    """``to_tags`` of a cell as a tuple (empty for no tags), cached: exports repeat a few tag sets."""
    tags = tuple(to_tags(text, field) or ())
    if len(_TAG_SETS) < 4096:
        _TAG_SETS[text] = tags
    return tags


def _conversion(field: str, builder: RecordBuilder) -> tuple[str, bool, bool]:
    """The code for one cell of ``field``; whether it can raise _FieldError; whether it is text-like
    (empty is falsy, not None)."""
    if field in PHONE_FIELDS:
        indian = "v" if builder.phone.formats_e164 else "_indian(v[3:])"
        return _PHONE_CODE.replace("INDIAN", indian), True, False
    convert = builder.converters[field]
    if convert is to_text:  # never fails on a string
        return _TEXT_CODE.replace("CONVERT", "_to_text"), False, True
    if convert is to_country:
        return _TEXT_CODE.replace("CONVERT", "_to_country"), False, True
    if convert is to_identifier:
        return _IDENTIFIER_CODE, True, True
    if convert is to_email:
        return _EMAIL_CODE, True, True
    if convert is to_boolean:
        return _BOOLEAN_CODE, True, False
    if convert is to_tags:
        return _TAGS_CODE, False, False  # to_tags never fails on a string
    if convert is to_date:
        return _DATE_CODE, True, False
    return _CALL_CODE.replace("CONVERT", f"_convert_{field}"), True, False


def _indent(code: str, depth: int) -> list[str]:
    return ["    " * depth + line for line in code.splitlines()]


def _field_code(field: str, indices: tuple[int, ...], builder: RecordBuilder) -> list[str]:
    conversion, can_fail, text_like = _conversion(field, builder)
    if not text_like:
        conversion = _NON_EMPTY_CODE.replace("CONVERSION", "\n".join(_indent(conversion, 1)))
    conversion = conversion.replace("FIELD", repr(field))
    missing, present = ("not x", "x") if text_like else ("x is None", "x is not None")
    body: list[str] = []
    for position, index in enumerate(indices):
        if position:
            body.append(f"if {missing}:")
        body += _indent(conversion.replace("CELL", f"cells[{index}]"), 1 if position else 0)
    body.append(f"if {present}:")
    body.append(f"    record[{field!r}] = x")
    if not can_fail:
        return _indent("\n".join(body), 1)
    assert field not in REQUIRED_FIELDS, "a name's errors go before the others: it must not fail here"
    return [
        "    try:",
        *_indent("\n".join(body), 2),
        "    except _FieldError as exc:",
        f"        errors.append(_from_cell(exc, cells, {field!r}))",
    ]


class _RowHelpers:
    """What the generated ``build`` calls beyond its inline cases, bound to one header's columns."""

    __slots__ = (
        "country_columns",
        "dates",
        "field_columns",
        "full_name_columns",
        "name_source",
        "names",
        "phone",
        "phone_columns",
    )

    def __init__(
        self, field_columns: dict[str, tuple[int, ...]], names: list[str], builder: RecordBuilder
    ) -> None:
        self.field_columns = field_columns
        self.names = names
        self.phone = builder.phone
        self.dates = builder.dates
        self.country_columns = field_columns.get("country", ())
        self.phone_columns = field_columns.get("phoneNumber", ())
        self.full_name_columns = field_columns.get(FULL_NAME, ())
        self.name_source = names[self.full_name_columns[0]] if self.full_name_columns else ""

    def country_of_row(self, cells: list[str]) -> RowCountry:
        columns = self.country_columns
        if len(columns) == 1:  # as row_country says of one value
            return value_country(cells[columns[0]])
        if not columns:
            return NO_COUNTRY
        return row_country(cells[index] for index in columns)

    def phone_of_row(self, value: str, field: str, cells: list[str]) -> str | None:
        country = self.country_of_row(cells)
        return self.phone(value, field, country.phone_region, country.no_region_reason)

    def second_phone(self, record: dict[str, Any], cells: list[str]) -> None:
        primary = record["phoneNumber"]
        seen: set[str] = set()
        for index in self.phone_columns:
            value = cells[index]
            # A cell written as the primary already is (+91 mobiles in E.164) needs no parsing.
            if not value or value == primary or value in seen:
                continue
            seen.add(value)
            try:
                other = self.phone_of_row(value, "alternatePhoneNumber", cells)
            except FieldError:
                continue
            if other is not None and other != record["phoneNumber"]:
                record["alternatePhoneNumber"] = other
                return

    def names_of_row(self, record: dict[str, Any], errors: list[str], cells: list[str]) -> dict[str, Any]:
        full, source = None, self.name_source
        for index in self.full_name_columns:
            full = clean(cells[index]) or None
            if full:
                source = self.names[index]
                break
        errors[:0] = complete_names(record, full, source, frozenset())  # names' messages come first
        return in_field_order(record)

    def from_cell(self, exc: FieldError, cells: list[str], field: str) -> str:
        # The column that failed is the first of the field's columns with something in it.
        for index in self.field_columns[field]:
            if clean(cells[index]):
                return from_column(str(exc), self.names[index], field)
        return str(exc)


def _second_phone_code(phone_columns: tuple[int, ...]) -> list[str]:
    """Only where two phone cells hold different text can there be a second phone."""
    if len(phone_columns) <= 1:
        return []
    if len(phone_columns) == 2:
        a, b = (f"cells[{index}]" for index in phone_columns)
        differ = f"{a} != {b} and {a} and {b}"
    else:
        differ = f"len({{{', '.join(f'cells[{index}]' for index in phone_columns)}}} - _EMPTY) > 1"
    return [
        f'    if {differ} and "phoneNumber" in record and "alternatePhoneNumber" not in record:',
        "        _second_phone(record, cells)",
    ]


def _source(field_columns: dict[str, tuple[int, ...]], builder: RecordBuilder) -> str:
    lines = ["def build(cells):", "    record = {}", "    errors = []"]
    if any(field in PHONE_FIELDS or builder.converters.get(field) is to_date for field in field_columns):
        lines.append("    country = None  # the row's country, looked up by the first cell that needs it")
    for field, indices in field_columns.items():
        if field != FULL_NAME:
            lines += _field_code(field, indices, builder)
    lines += _second_phone_code(field_columns.get("phoneNumber", ()))
    lines += [
        '    if "firstName" not in record or "lastName" not in record:',
        "        record = _names(record, errors, cells)",
        "    if not errors and (",
        '        "phoneNumber" in record or "email" in record or "partnerCustomerId" in record    ):',
        "        return record, ()",
        "    return _finish(record, errors)",
    ]
    return "\n".join(lines) + "\n"


def _namespace(
    field_columns: dict[str, tuple[int, ...]], helpers: _RowHelpers, builder: RecordBuilder
) -> dict[str, Any]:
    namespace: dict[str, Any] = {
        "_FieldError": FieldError,
        "_finish": finish,
        "_in_field_order": in_field_order,
        "_email_match": _email_match,
        "_BOOLEANS": _FAST_BOOLEANS,
        "_SPECIAL": _SPECIAL_FIRST,
        "_EMPTY": frozenset({""}),
        "_e164_mobile": _e164_mobile,
        "_TAG_SETS": _TAG_SETS,
        "_tag_set": _tag_set,
        "_to_text": to_text,
        "_to_country": to_country,
        "_to_identifier": to_identifier,
        "_to_email": to_email,
        "_to_boolean": to_boolean,
        "_indian": builder.phone.indian,
        "_country_of_row": helpers.country_of_row,
        "_phone": builder.phone,
        "_dates": helpers.dates,
        "_ISO_DATES": ISO_DATES,
        "_second_phone": helpers.second_phone,
        "_names": helpers.names_of_row,
        "_from_cell": helpers.from_cell,
    }
    for field in field_columns:
        if field not in PHONE_FIELDS and field != FULL_NAME:
            namespace[f"_convert_{field}"] = builder.converters[field]
    return namespace


def _compile(
    field_columns: dict[str, tuple[int, ...]], names: list[str], builder: RecordBuilder
) -> Callable[[list[str]], Result]:
    source = _source(field_columns, builder)
    namespace = _namespace(field_columns, _RowHelpers(field_columns, names, builder), builder)
    exec(compile(source, "<bik_sync.records csv plan>", "exec"), namespace)  # noqa: S102
    build: Callable[[list[str]], Result] = namespace["build"]
    return build
