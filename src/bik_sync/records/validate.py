"""Records built and validated as the API would: one builder for file rows and queue records.

A row of a file and a record from the queue go through the same steps: names resolved by the
mapping, the first non-empty candidate of each field converted (primary column first, the others
fill gaps), a name in one column split, a second phone kept as the alternate, required names, and
at least one identity. So the Lambda ingest, the SQS worker and ``bik-sync validate`` cannot
disagree about a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from bik_sync.records.dates import DateReader
from bik_sync.records.errors import FieldError
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
from bik_sync.records.mapping import FULL_NAME, Mapper
from bik_sync.records.normalise import PLACEHOLDERS, Converter, converter_for, to_text
from bik_sync.records.options import ReadOptions
from bik_sync.records.phones import NO_COUNTRY, PhoneNormaliser, RowCountry, country_of

if TYPE_CHECKING:
    from bik_sync.records.csv_plan import CsvPlan

Result = tuple[dict[str, Any] | None, tuple[str, ...]]
Candidate = tuple[int, int, str, Any]  # priority, position, source name, value

FIELD_ORDER: Final = {field: index for index, field in enumerate(API_FIELDS)}
_API_NAMES: Final = frozenset(API_FIELDS)
_IDENTITY_PREFIXES: Final = tuple(f'"{field}"' for field in IDENTITY_FIELDS)
_COUNTRIES: dict[str, RowCountry] = {}
_REQUIRED: Final = frozenset(REQUIRED_FIELDS)
NAME_FIELDS: Final = ("firstName", "lastName")
# Shopify's Admin API calls the customer's account state "state" (enabled, disabled...): not a province.
_SHOPIFY_ACCOUNT_STATES: Final = frozenset({"enabled", "disabled", "invited", "declined"})
_MAX_DEPTH: Final = 16
MAX_IGNORED_LISTED: Final = 100
# The members a JSON:API resource object may have (jsonapi.org, "Resource Objects"). Klaviyo's API
# writes each profile so: its fields are under "attributes"; "id" is Klaviyo's own, not the brand's.
_JSON_API_MEMBERS: Final = frozenset({"type", "id", "lid", "attributes", "relationships", "links", "meta"})


def _resource_attributes(obj: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON:API resource object's ``attributes``, read as the record; None for any other object."""
    attributes = obj.get("attributes")
    if type(attributes) is dict and type(obj.get("type")) is str and obj.keys() <= _JSON_API_MEMBERS:
        return attributes
    return None


def _by_priority(candidate: Candidate) -> tuple[int, int]:
    return candidate[0], candidate[1]


def value_country(value: Any) -> RowCountry:
    """What one country value says (``country_of``), cached: a file names a few countries."""
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
    """The country a row names in its first country column that says one (by priority).

    An unrecognised one is the row's country all the same (the next column is not asked: the row
    said something we cannot read); two columns that name different countries are a conflict.
    """
    first: RowCountry | None = None
    regions: list[str] = []
    for value in values:
        found = value_country(value)
        if found is NO_COUNTRY:
            continue
        first = first or found
        if found.region and found.region not in regions:
            regions.append(found.region)
    if first is None or first.unrecognised is not None or len(regions) < 2:
        return first or NO_COUNTRY
    return RowCountry(region=first.region, conflict=" and ".join(regions))


def shown_key(key: str) -> str:
    """A key as a reject names it, unless it reads like someone's email or phone number."""
    if "@" in key or sum(char.isdigit() for char in key) >= 7:
        return "(a key that looks like an email or a phone number)"
    return key


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
    first, last = split_name(full or "")
    if first:
        record.setdefault("firstName", first)
    if last:
        record.setdefault("lastName", last)
    errors = []
    for field in NAME_FIELDS:
        if field not in record and field not in skip:
            errors.append(one_word_name_message(field, source) if first else required_message(field))
    return errors


# What may follow a name after a comma without being a first name: "Asha Verma, MD", "Smith, John, Jr.".
_NAME_SUFFIXES: Final = frozenset({"jr", "sr", "ii", "iii", "iv", "md", "phd", "esq", "dds", "cpa", "mba"})
_BRACKETS: Final = re.compile(r"\([^)]*\)")


def split_name(full: str) -> tuple[str, str]:
    """First and last name of a whole name: ``Asha Rani Verma`` -> (``Asha Rani``, ``Verma``);
    ``Verma, Asha`` (last name first) -> (``Asha``, ``Verma``); a bracketed note ``(VIP)``, a suffix
    after a comma and placeholder words (``NULL``, ``-``) are no part of it. One word is a first
    name alone ("", when the name is no word at all)."""
    parts = [part.strip() for part in _BRACKETS.sub(" ", full).split(",")]
    parts = [part for part in parts if part and part.strip(".").lower() not in _NAME_SUFFIXES]
    if len(parts) == 2 and len(parts[0].split()) == 1:
        parts = [parts[1], parts[0]]  # "Verma, Asha": the last name first
    words = [word for part in parts for word in part.split() if word not in PLACEHOLDERS]
    if not words:
        return "", ""
    if len(words) == 1:
        return words[0], ""
    return " ".join(words[:-1]), words[-1]


def in_field_order(record: dict[str, Any]) -> dict[str, Any]:
    return {field: record[field] for field in API_FIELDS if field in record}


def finish(record: dict[str, Any], errors: list[str]) -> Result:
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
        if "attributes" in obj and (attributes := _resource_attributes(obj)) is not None:
            obj = attributes  # the envelope (type, id, links) describes the resource, not the person
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
            errors += [
                not_allowed_message(shown_key(key)) for key in dict.fromkeys(k.split(".")[0] for k in unknown)
            ]
        elif unknown:
            self.note_ignored(unknown)
        return finish(record, errors)

    def assemble(self, candidates: dict[str, list[Candidate]]) -> tuple[dict[str, Any], list[str]]:
        """The record from each field's candidates, and one message per problem (names first)."""
        for found in candidates.values():
            found.sort(key=_by_priority)
        country = row_country(value for _, _, _, value in candidates.get("country", ()))
        record: dict[str, Any] = {}
        name_errors: list[str] = []
        errors: list[str] = []
        failed: set[str] = set()
        for field in sorted(candidates.keys() - {FULL_NAME}, key=FIELD_ORDER.__getitem__):
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
            record = in_field_order(record)
        # JSON escapes can spell a lone surrogate ("\ud800"): valid JSON, but no UTF-8 can carry it;
        # and a NUL ("\u0000"), which no text field means.
        errors += filter(None, (_text_problem(field, value) for field, value in record.items()))
        return record, name_errors + errors

    def _convert(self, field: str, value: Any, country: RowCountry) -> Any:
        if field in PHONE_FIELDS:
            return self.phone(value, field, country.phone_region, country.no_region_reason)
        if field in ("createdAt", "updatedAt"):
            return self.dates(value, field, country.region)
        return self.converters[field](value, field)

    def _second_phone(self, record: dict[str, Any], found: list[Candidate], country: RowCountry) -> None:
        """A second, different phone of the row (Shopify's Default Address Phone) is its alternate.

        Only a valid one: the row's own phone is good, and a bad second number is not worth the row.
        """
        for _, _, _, value in found:
            try:
                other = self.phone(
                    value, "alternatePhoneNumber", country.phone_region, country.no_region_reason
                )
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
        from bik_sync.records.csv_plan import CsvPlan  # here: csv_plan imports this module

        return CsvPlan(self, columns, sample_rows)


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
