"""Records built and validated as the API would: one builder for file rows and queue records.

A row of a file and a record from the queue go through the same steps: names resolved by the
mapping, the first non-empty candidate of each field converted (primary column first, the others
fill gaps), required names, and at least one identity. So the Lambda ingest, the SQS worker and
``bik-sync validate`` cannot disagree about a record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from bik_sync.records.errors import FieldError, UnreadableFile
from bik_sync.records.fields import (
    API_FIELDS,
    IDENTITY_FIELDS,
    IDENTITY_MESSAGE,
    PHONE_FIELDS,
    REJECT_KEYS,
    REQUIRED_FIELDS,
    not_allowed_message,
    required_message,
    text_message,
)
from bik_sync.records.mapping import Mapper
from bik_sync.records.normalise import (
    BOOLEAN_WORDS,
    Converter,
    PhoneNormaliser,
    converter_for,
    email_match,
    region_of,
    to_boolean,
    to_email,
    to_identifier,
    to_tags,
    to_text,
)
from bik_sync.records.options import ReadOptions

Result = tuple[dict[str, Any] | None, tuple[str, ...]]

_FIELD_ORDER: Final = {field: index for index, field in enumerate(API_FIELDS)}
_IDENTITY_PREFIXES: Final = tuple(f'"{field}"' for field in IDENTITY_FIELDS)
_REGIONS: dict[str, str | None] = {}
_REQUIRED: Final = frozenset(REQUIRED_FIELDS)
_email_match: Final = email_match
# An Indian mobile already in E.164 as exports write it: "+91", a mobile series digit, 9 more (ASCII).
_e164_mobile: Final = re.compile(r"\+91[6-9][0-9]{9}").fullmatch
# Booleans as exports write them, looked up on the raw cell before any cleaning.
_FAST_BOOLEANS: Final[dict[str, bool]] = {
    variant: value
    for word, value in BOOLEAN_WORDS.items()
    for variant in (word, word.upper(), word.capitalize())
}


def _by_priority(candidate: tuple[int, int, Any]) -> tuple[int, int]:
    return candidate[0], candidate[1]


def _region(value: Any) -> str | None:
    if type(value) is not str:
        return None
    try:
        return _REGIONS[value]
    except KeyError:
        region = region_of(value)
        if len(_REGIONS) < 4096:
            _REGIONS[value] = region
        return region


def _is_text(value: Any) -> bool:
    """False for a string (or a list of them) holding a lone surrogate, which UTF-8 cannot encode."""
    if isinstance(value, list):
        return all(_is_text(item) for item in value)
    if not isinstance(value, str) or value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finish(record: dict[str, Any], errors: list[str]) -> Result:
    has_identity = "phoneNumber" in record or "email" in record or "partnerCustomerId" in record
    if not has_identity and not any(error.startswith(_IDENTITY_PREFIXES) for error in errors):
        errors.append(IDENTITY_MESSAGE)
    if errors:
        return None, tuple(errors)
    return record, ()


class RecordBuilder:
    """Normalises and validates records for one set of options (mapping, region, phone format)."""

    __slots__ = ("converters", "mapper", "phone")

    def __init__(self, options: ReadOptions) -> None:
        self.mapper = Mapper(options.mapping)
        self.phone = PhoneNormaliser(options.default_region, options.phone_format)
        self.converters: dict[str, Converter] = {
            field: converter_for(field) for field in API_FIELDS if field not in PHONE_FIELDS
        }

    # --- one JSON object (a line, an array element, an SQS record) ---------------------------

    def check_object(self, obj: Any) -> Result:
        if not isinstance(obj, dict):
            return None, ('"value" must be of type object',)
        candidates: dict[str, list[tuple[int, int, Any]]] = {}
        unknown: list[str] = []
        for position, (key, value) in enumerate(obj.items()):
            if not isinstance(key, str) or key in REJECT_KEYS:
                continue
            target = self.mapper.target(key)
            if target is None:
                if not self.mapper.explicitly_ignored(key):
                    unknown.append(not_allowed_message(key))
                continue
            candidates.setdefault(target[0], []).append((target[1], position, value))
        region = None
        for _, _, value in sorted(candidates.get("country", ()), key=_by_priority):
            region = _region(value)
            if region:
                break
        record: dict[str, Any] = {}
        errors: list[str] = []
        for field in sorted(candidates.keys() | _REQUIRED, key=_FIELD_ORDER.__getitem__):
            for _, _, value in sorted(candidates.get(field, ()), key=_by_priority):
                try:
                    if field in PHONE_FIELDS:
                        converted = self.phone(value, field, region)
                    else:
                        converted = self.converters[field](value, field)
                except FieldError as exc:
                    errors.append(str(exc))
                    break
                if converted is not None:
                    record[field] = converted
                    break
            else:
                if field in _REQUIRED:
                    errors.append(required_message(field))
        # JSON escapes can spell a lone surrogate ("\ud800"): valid JSON, but no UTF-8 can carry it.
        errors += [text_message(field) for field, value in record.items() if not _is_text(value)]
        errors += unknown
        return _finish(record, errors)

    # --- CSV rows: a plan built once per header ----------------------------------------------

    def plan(self, columns: Sequence[str]) -> CsvPlan:
        return CsvPlan(self, columns)


class CsvPlan:
    """Per-column converters bound once for a header; ``build(cells)`` is the ingest inner loop.

    ``build`` is generated for the header: one straight-line block per mapped field with the
    common cases (clean text, yes/no, +91 mobiles) inline and the rest delegated to the same
    converters ``check_object`` uses, so a file row and a queue record cannot disagree.
    """

    __slots__ = ("build", "field_columns", "ignored", "width")

    def __init__(self, builder: RecordBuilder, columns: Sequence[str]) -> None:
        self.width = len(columns)
        by_field: dict[str, list[tuple[int, int]]] = {}
        self.ignored: list[str] = []
        for index, name in enumerate(columns):
            target = builder.mapper.target(name) if name else None
            if target is None:
                if name not in REJECT_KEYS and not builder.mapper.explicitly_ignored(name):
                    self.ignored.append(name or f"(column {index + 1})")
                continue
            by_field.setdefault(target[0], []).append((target[1], index))
        self.field_columns: dict[str, tuple[int, ...]] = {
            field: tuple(index for _, index in sorted(found))
            for field, found in sorted(by_field.items(), key=lambda item: _FIELD_ORDER[item[0]])
        }
        missing = [field for field in REQUIRED_FIELDS if field not in self.field_columns]
        if missing:
            # The header is not echoed: in a file without one, it is a customer's data.
            what = " or ".join(missing)
            raise UnreadableFile(
                f"no column maps to {what} ({len(columns)} columns; is the first row a header?); name the "
                "columns 'First Name'/'Last Name' or give a mapping file"
            )
        self.build: Callable[[list[str]], Result] = _compile(self.field_columns, builder)


# Code templates: each turns the cell ``CELL`` into ``x`` or raises _FieldError. The common case is
# inline; anything unusual goes to the shared converters. Text-like templates leave ``x`` falsy ("" or
# None) when the cell cleans to nothing; the others leave None (a boolean may be False).
_TEXT_CODE = """\
x = CELL.strip()
if x[:1] == "'":
    x = _to_text(x, FIELD)
"""
_EMAIL_CODE = """\
x = CELL.strip().lower()
if x[:1] == "'":
    x = _to_email(x, FIELD)
elif x and _email_match(x) is None:
    raise _FieldError(MESSAGE)
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
    x = _phone(v, FIELD, _row_region(cells))
"""
_TAGS_CODE = """\
x = _TAG_SETS.get(v)
if x is None:
    x = _tag_set(v, FIELD)
x = list(x) if x else None
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
    """The code for one cell of ``field``; whether it can raise _FieldError; whether it is text-like."""
    if field in PHONE_FIELDS:
        indian = "v" if builder.phone.formats_e164 else "_indian(v[3:])"
        return _PHONE_CODE.replace("INDIAN", indian), True, False
    convert = builder.converters[field]
    if convert is to_text or convert is to_identifier:
        return _TEXT_CODE, False, True
    if convert is to_email:
        return _EMAIL_CODE.replace("MESSAGE", repr(f'"{field}" must be a valid email')), True, True
    if convert is to_boolean:
        return _BOOLEAN_CODE, True, False
    if convert is to_tags:
        return _TAGS_CODE, False, False  # to_tags never fails on a string
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
    if field in _REQUIRED:
        body.append("else:")
        body.append(f"    errors.append({required_message(field)!r})")
    if not can_fail:
        return _indent("\n".join(body), 1)
    return [
        "    try:",
        *_indent("\n".join(body), 2),
        "    except _FieldError as exc:",
        "        errors.append(str(exc))",
    ]


def _compile(
    field_columns: dict[str, tuple[int, ...]], builder: RecordBuilder
) -> Callable[[list[str]], Result]:
    lines = ["def build(cells):", "    record = {}", "    errors = []"]
    for field, indices in field_columns.items():
        lines += _field_code(field, indices, builder)
    lines += [
        "    if not errors and (",
        '        "phoneNumber" in record or "email" in record or "partnerCustomerId" in record    ):',
        "        return record, ()",
        "    return _finish(record, errors)",
    ]
    country_columns = field_columns.get("country", ())

    def row_region(cells: list[str]) -> str | None:
        for index in country_columns:
            region = _region(cells[index])
            if region:
                return region
        return None

    namespace: dict[str, Any] = {
        "_FieldError": FieldError,
        "_finish": _finish,
        "_email_match": _email_match,
        "_BOOLEANS": _FAST_BOOLEANS,
        "_e164_mobile": _e164_mobile,
        "_TAG_SETS": _TAG_SETS,
        "_tag_set": _tag_set,
        "_to_text": to_text,
        "_to_email": to_email,
        "_to_boolean": to_boolean,
        "_phone": builder.phone,
        "_indian": builder.phone.indian,
        "_row_region": row_region,
    }
    for field in field_columns:
        if field not in PHONE_FIELDS:
            namespace[f"_convert_{field}"] = builder.converters[field]
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<bik_sync.records csv plan>", "exec"), namespace)  # noqa: S102
    build: Callable[[list[str]], Result] = namespace["build"]
    return build


_DEFAULT_BUILDERS: dict[ReadOptions, RecordBuilder] = {}


def builder_for(options: ReadOptions) -> RecordBuilder:
    """A builder per distinct options (mappings are hashed by content), cached for warm Lambdas."""
    try:
        key: Any = options if options.mapping is None else None
        if key is not None:
            return _DEFAULT_BUILDERS[key]
    except (KeyError, TypeError):
        pass
    builder = RecordBuilder(options)
    if options.mapping is None and len(_DEFAULT_BUILDERS) < 32:
        _DEFAULT_BUILDERS[options] = builder
    return builder


def check_record(obj: Any, options: ReadOptions = ReadOptions()) -> Result:  # noqa: B008
    """Normalise and validate one record as another system sends it on SQS (API field names).

    Returns ``(record, ())`` when valid, else ``(None, errors)`` with one API-style message per
    problem; unknown keys are errors (``"emial" is not allowed``).
    """
    return builder_for(options).check_object(obj)
