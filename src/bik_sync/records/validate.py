"""Records built and validated as the API would: one builder for file rows and queue records.

A row of a file and a record from the queue go through the same steps: names resolved by the
mapping, the first non-empty candidate of each field converted (primary column first, the others
fill gaps), a name in one column split, a second phone kept as the alternate, required names, and
at least one identity. So the Lambda ingest, the SQS worker and ``bik-sync validate`` cannot
disagree about a record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from bik_sync.records.dates import DateReader, slash_date_order, to_date
from bik_sync.records.errors import FieldError, UnreadableFile
from bik_sync.records.fields import (
    API_FIELDS,
    IDENTITY_FIELDS,
    IDENTITY_MESSAGE,
    PHONE_FIELDS,
    REJECT_KEYS,
    REQUIRED_FIELDS,
    from_column,
    not_allowed_message,
    nul_message,
    one_word_name_message,
    required_message,
    text_message,
)
from bik_sync.records.mapping import FULL_NAME, Mapper, name_key
from bik_sync.records.normalise import (
    BOOLEAN_WORDS,
    PLACEHOLDERS,
    Converter,
    clean,
    converter_for,
    email_match,
    to_boolean,
    to_country,
    to_email,
    to_identifier,
    to_tags,
    to_text,
)
from bik_sync.records.options import ReadOptions
from bik_sync.records.phones import NO_COUNTRY, PhoneNormaliser, RowCountry, country_of

Result = tuple[dict[str, Any] | None, tuple[str, ...]]
Candidate = tuple[int, int, str, Any]  # priority, position, source name, value

_FIELD_ORDER: Final = {field: index for index, field in enumerate(API_FIELDS)}
_API_NAMES: Final = frozenset(API_FIELDS)
_IDENTITY_PREFIXES: Final = tuple(f'"{field}"' for field in IDENTITY_FIELDS)
_COUNTRIES: dict[str, RowCountry] = {}
_REQUIRED: Final = frozenset(REQUIRED_FIELDS)
_NAME_FIELDS: Final = ("firstName", "lastName")
_email_match: Final = email_match
# An Indian mobile already in E.164 as exports write it: "+91", a mobile series digit, 9 more (ASCII).
_e164_mobile: Final = re.compile(r"\+91[6-9][0-9]{9}").fullmatch
# Booleans as exports write them, looked up on the raw cell before any cleaning.
_FAST_BOOLEANS: Final[dict[str, bool]] = {
    variant: value
    for word, value in BOOLEAN_WORDS.items()
    for variant in (word, word.upper(), word.capitalize())
}
# Shopify's Admin API calls the customer's account state "state" (enabled, disabled...): not a province.
_SPECIAL_FIRST: Final = frozenset({"'", *(word[:1] for word in PLACEHOLDERS)})
_SHOPIFY_ACCOUNT_STATES: Final = frozenset({"enabled", "disabled", "invited", "declined"})
_MAX_DEPTH: Final = 16
MAX_IGNORED_LISTED: Final = 100


def _by_priority(candidate: Candidate) -> tuple[int, int]:
    return candidate[0], candidate[1]


def _country(value: Any) -> RowCountry:
    if type(value) is not str:
        return NO_COUNTRY
    try:
        return _COUNTRIES[value]
    except KeyError:
        found = country_of(value)
        if len(_COUNTRIES) < 4096:
            _COUNTRIES[value] = found
        return found


def row_country(values: Iterable[Any]) -> RowCountry:
    """The first country a row names that we recognise; else the first we do not; else none."""
    unrecognised = NO_COUNTRY
    for value in values:
        found = _country(value)
        if found.region:
            return found
        if found.unrecognised and unrecognised is NO_COUNTRY:
            unrecognised = found
    return unrecognised


def _text_problem(field: str, value: Any) -> str | None:
    """What makes a converted value unsendable text: a NUL character, or a lone surrogate."""
    if isinstance(value, list):
        return next(filter(None, (_text_problem(field, item) for item in value)), None)
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return nul_message(field)
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return text_message(field)
    return None


def complete_names(record: dict[str, Any], full: str | None, source: str, skip: frozenset[str]) -> list[str]:
    """Fill missing first/last names from a whole name (the last word is the last name).

    Returns the required-name messages still due; ``skip`` holds name fields that already have an
    error of their own.
    """
    words = full.split() if full else []
    last, comma, first = (full or "").partition(",")
    if comma and first.strip() and last.strip() and "," not in first:  # "Verma, Asha": last name first
        record.setdefault("firstName", first.strip())
        record.setdefault("lastName", last.strip())
    elif len(words) > 1:
        record.setdefault("firstName", " ".join(words[:-1]))
        record.setdefault("lastName", words[-1])
    elif words:
        record.setdefault("firstName", words[0])
    errors = []
    for field in _NAME_FIELDS:
        if field not in record and field not in skip:
            errors.append(one_word_name_message(field, source) if words else required_message(field))
    return errors


def _in_field_order(record: dict[str, Any]) -> dict[str, Any]:
    return {field: record[field] for field in API_FIELDS if field in record}


def _finish(record: dict[str, Any], errors: list[str]) -> Result:
    has_identity = "phoneNumber" in record or "email" in record or "partnerCustomerId" in record
    if not has_identity and not any(error.startswith(_IDENTITY_PREFIXES) for error in errors):
        errors.append(IDENTITY_MESSAGE)
    if errors:
        return None, tuple(errors)
    return record, ()


def _flatten(
    obj: dict[str, Any], prefix: str, out: list[tuple[str, Any]], depth: int, mapper: Mapper
) -> None:
    """Nested objects to dotted names (``billing.phone``); a field's own key keeps its value as it is
    (``"tags": {...}`` is then a wrong type, as the API would say), unless a key inside it maps:
    Shopify's ``"email_marketing_consent": {"state": "subscribed", ...}`` is read from its state."""
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        name = f"{prefix}.{key}" if prefix else key
        if (
            type(value) is dict
            and depth < _MAX_DEPTH
            and (mapper.target(name) is None or _maps_inside(value, name, mapper))
        ):
            _flatten(value, name, out, depth + 1, mapper)
        else:
            out.append((name, value))


def _maps_inside(obj: dict[str, Any], prefix: str, mapper: Mapper) -> bool:
    return any(isinstance(key, str) and mapper.target(f"{prefix}.{key}") is not None for key in obj)


class RecordBuilder:
    """Normalises and validates records for one set of options (mapping, region, phone format).

    A file gets a builder of its own (its date order and the keys it ignored are the file's); the
    queue's records share one per options.
    """

    __slots__ = ("converters", "dates", "ignored", "mapper", "phone")

    def __init__(self, options: ReadOptions, date_order: str | None = None) -> None:
        self.mapper = Mapper(options.mapping)
        self.phone = PhoneNormaliser(options.default_region, options.phone_format)
        self.dates = DateReader(date_order, options.default_region)
        self.converters: dict[str, Converter] = {
            field: converter_for(field) for field in API_FIELDS if field not in PHONE_FIELDS
        }
        self.ignored: list[str] = []  # keys of other systems' records that map to nothing

    def note_ignored(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.ignored and len(self.ignored) < MAX_IGNORED_LISTED:
                self.ignored.append(name)

    # --- one JSON object (a line, an array element, an SQS record) ---------------------------

    def check_object(self, obj: Any) -> Result:
        """A record in the API's own names has its unknown keys refused, as the API would; a record
        in another system's names (``first_name``, ``billing.phone``) has them ignored and listed."""
        if not isinstance(obj, dict):
            return None, ('"value" must be of type object',)
        if any(type(value) is dict for value in obj.values()):
            items: list[tuple[str, Any]] = []
            _flatten(obj, "", items, 0, self.mapper)
        else:
            items = list(obj.items())
        account_state = ("default_address" in obj or "admin_graphql_api_id" in obj) and obj.get(
            "state"
        ) in _SHOPIFY_ACCOUNT_STATES
        candidates: dict[str, list[Candidate]] = {}
        unknown: list[str] = []
        api_style = True
        for position, (key, value) in enumerate(items):
            if not isinstance(key, str) or key in REJECT_KEYS:
                continue
            target = None if account_state and key == "state" else self.mapper.target(key)
            if target is None:
                if not self.mapper.explicitly_ignored(key):
                    unknown.append(key)
                continue
            if key not in _API_NAMES:
                api_style = False
            candidates.setdefault(target[0], []).append((target[1], position, key, value))
        record, errors = self.assemble(candidates)
        if api_style:
            errors += [not_allowed_message(key) for key in dict.fromkeys(k.split(".")[0] for k in unknown)]
        elif unknown:
            self.note_ignored(unknown)
        return _finish(record, errors)

    def assemble(self, candidates: dict[str, list[Candidate]]) -> tuple[dict[str, Any], list[str]]:
        """The record from each field's candidates, and one message per problem (names first)."""
        for found in candidates.values():
            found.sort(key=_by_priority)
        country = row_country(value for _, _, _, value in candidates.get("country", ()))
        record: dict[str, Any] = {}
        name_errors: list[str] = []
        errors: list[str] = []
        failed: set[str] = set()
        for field in sorted(candidates.keys() - {FULL_NAME}, key=_FIELD_ORDER.__getitem__):
            for _, _, source, value in candidates[field]:
                try:
                    converted = self._convert(field, value, country)
                except FieldError as exc:
                    (name_errors if field in _REQUIRED else errors).append(
                        from_column(str(exc), source, field)
                    )
                    failed.add(field)
                    break
                if converted is not None:
                    record[field] = converted
                    break
        if "phoneNumber" in record and "alternatePhoneNumber" not in record:
            self._second_phone(record, candidates["phoneNumber"], country)
        if "firstName" not in record or "lastName" not in record:
            full, source = self._full_name(candidates.get(FULL_NAME, ()), name_errors)
            name_errors += complete_names(record, full, source, frozenset(failed))
            record = _in_field_order(record)
        # JSON escapes can spell a lone surrogate ("\ud800"): valid JSON, but no UTF-8 can carry it;
        # and a NUL ("\u0000"), which no text field means.
        errors += filter(None, (_text_problem(field, value) for field, value in record.items()))
        return record, name_errors + errors

    def _convert(self, field: str, value: Any, country: RowCountry) -> Any:
        if field in PHONE_FIELDS:
            return self.phone(value, field, country.region, country.unrecognised)
        if field in ("createdAt", "updatedAt"):
            return self.dates(value, field, country.region)
        return self.converters[field](value, field)

    def _second_phone(self, record: dict[str, Any], found: list[Candidate], country: RowCountry) -> None:
        """A second, different phone of the row (Shopify's Default Address Phone) is its alternate.

        Only a valid one: the row's own phone is good, and a bad second number is not worth the row.
        """
        for _, _, _, value in found:
            try:
                other = self.phone(value, "alternatePhoneNumber", country.region, country.unrecognised)
            except FieldError:
                continue
            if other is not None and other != record["phoneNumber"]:
                record["alternatePhoneNumber"] = other
                return

    @staticmethod
    def _full_name(found: Sequence[Candidate], errors: list[str]) -> tuple[str | None, str]:
        for _, _, source, value in sorted(found, key=_by_priority):
            try:
                text = to_text(value, "firstName")
            except FieldError:
                errors.append(f'"{source}" must be a string')
                return None, source
            if text:
                return text, source
        return None, found[0][2] if found else ""

    # --- CSV rows: a plan built once per header ----------------------------------------------

    def plan(self, columns: Sequence[str], sample_rows: Sequence[Sequence[str]] = ()) -> CsvPlan:
        return CsvPlan(self, columns, sample_rows)


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
        has_names = FULL_NAME in self.field_columns or all(f in self.field_columns for f in _NAME_FIELDS)
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
    return _FIELD_ORDER.get(field, len(_FIELD_ORDER))


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
_EMAIL_CODE = """\
x = CELL.strip().lower()
if x[:1] in _SPECIAL:
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
    x = _phone_of_row(v, FIELD, cells)
"""
_TAGS_CODE = """\
x = _TAG_SETS.get(v)
if x is None:
    x = _tag_set(v, FIELD)
x = list(x) if x else None
"""
_DATE_CODE = "x = _date_of_row(v, FIELD, cells)\n"
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
        return _EMAIL_CODE.replace("MESSAGE", repr(f'"{field}" must be a valid email')), True, True
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
    assert field not in _REQUIRED, "a name's errors go before the others: it must not fail here"
    return [
        "    try:",
        *_indent("\n".join(body), 2),
        "    except _FieldError as exc:",
        f"        errors.append(_from_cell(exc, cells, {field!r}))",
    ]


def _compile(
    field_columns: dict[str, tuple[int, ...]], names: list[str], builder: RecordBuilder
) -> Callable[[list[str]], Result]:
    lines = ["def build(cells):", "    record = {}", "    errors = []"]
    for field, indices in field_columns.items():
        if field != FULL_NAME:
            lines += _field_code(field, indices, builder)
    phone_columns = field_columns.get("phoneNumber", ())
    if len(phone_columns) > 1:
        # Only where two phone cells hold different text can there be a second phone.
        if len(phone_columns) == 2:
            a, b = (f"cells[{index}]" for index in phone_columns)
            differ = f"{a} != {b} and {a} and {b}"
        else:
            differ = f"len({{{', '.join(f'cells[{index}]' for index in phone_columns)}}} - _EMPTY) > 1"
        lines += [
            f'    if {differ} and "phoneNumber" in record and "alternatePhoneNumber" not in record:',
            "        _second_phone(record, cells)",
        ]
    lines += [
        '    if "firstName" not in record or "lastName" not in record:',
        "        record = _names(record, errors, cells)",
        "    if not errors and (",
        '        "phoneNumber" in record or "email" in record or "partnerCustomerId" in record    ):',
        "        return record, ()",
        "    return _finish(record, errors)",
    ]
    country_columns = field_columns.get("country", ())
    phone = builder.phone
    dates = builder.dates

    def country_of_row(cells: list[str]) -> RowCountry:
        return row_country(cells[index] for index in country_columns)

    def phone_of_row(value: str, field: str, cells: list[str]) -> str | None:
        country = country_of_row(cells)
        return phone(value, field, country.region, country.unrecognised)

    def date_of_row(value: str, field: str, cells: list[str]) -> str | None:
        return dates(value, field, country_of_row(cells).region)

    def second_phone(record: dict[str, Any], cells: list[str]) -> None:
        primary = record["phoneNumber"]
        seen: set[str] = set()
        for index in phone_columns:
            value = cells[index]
            # A cell written as the primary already is (+91 mobiles in E.164) needs no parsing.
            if not value or value == primary or value in seen:
                continue
            seen.add(value)
            try:
                other = phone_of_row(value, "alternatePhoneNumber", cells)
            except FieldError:
                continue
            if other is not None and other != record["phoneNumber"]:
                record["alternatePhoneNumber"] = other
                return

    full_name_columns = field_columns.get(FULL_NAME, ())
    name_source = names[full_name_columns[0]] if full_name_columns else ""

    def names_of_row(record: dict[str, Any], errors: list[str], cells: list[str]) -> dict[str, Any]:
        full, source = None, name_source
        for index in full_name_columns:
            full = clean(cells[index]) or None
            if full:
                source = names[index]
                break
        errors[:0] = complete_names(record, full, source, frozenset())  # names' messages come first
        return _in_field_order(record)

    def from_cell(exc: FieldError, cells: list[str], field: str) -> str:
        # The column that failed is the first of the field's columns with something in it.
        for index in field_columns[field]:
            if clean(cells[index]):
                return from_column(str(exc), names[index], field)
        return str(exc)

    namespace: dict[str, Any] = {
        "_FieldError": FieldError,
        "_finish": _finish,
        "_in_field_order": _in_field_order,
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
        "_indian": phone.indian,
        "_phone_of_row": phone_of_row,
        "_date_of_row": date_of_row,
        "_second_phone": second_phone,
        "_names": names_of_row,
        "_from_cell": from_cell,
    }
    for field in field_columns:
        if field not in PHONE_FIELDS and field != FULL_NAME:
            namespace[f"_convert_{field}"] = builder.converters[field]
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<bik_sync.records csv plan>", "exec"), namespace)  # noqa: S102
    build: Callable[[list[str]], Result] = namespace["build"]
    return build


_DEFAULT_BUILDERS: dict[ReadOptions, RecordBuilder] = {}


def builder_for(options: ReadOptions) -> RecordBuilder:
    """The queue's builder per distinct options, cached for warm Lambdas (a file gets its own)."""
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
    """Normalise and validate one record as another system sends it on SQS.

    Returns ``(record, ())`` when valid, else ``(None, errors)`` with one API-style message per
    problem; a record in the API's own names has unknown keys refused (``"emial" is not allowed``).
    """
    return builder_for(options).check_object(obj)
