"""The JSON readers: JSON lines, and documents (an array of records, or an object holding them).

A document is parsed value by value from the stream (``_JsonCursor``), so no file is held whole
in memory; a record larger than MAX_LINE_CHARS is refused.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any, Final, TextIO

from bik_sync.records.csv_reader import MAX_LINE_CHARS, LineGuard, guarded_lines
from bik_sync.records.dates import DateReader, slash_date_order
from bik_sync.records.errors import RefusedWhole, UnreadableFile
from bik_sync.records.fields import DATE_FIELDS
from bik_sync.records.mapping import name_key
from bik_sync.records.options import ReadOptions
from bik_sync.records.rows import RecordFile, ResumePoint, Row
from bik_sync.records.streams import STREAM_ERRORS, Position, read_guard
from bik_sync.records.validate import RecordBuilder, shown_key

#: Keys of one top-level JSON object that is one record; more is not a customer record.
_MAX_OBJECT_KEYS: Final = 10_000
_CHUNK_CHARS: Final = 1 << 16
# A key and its slash-date value as JSON writes them ("created_at": "05/03/2024 10:20").
_JSON_SLASH_DATE: Final = re.compile(
    r'"([^"\\]{1,100})"\s*:\s*"(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:[ T,][^"]{0,20})?)"'
)


def open_json(
    text: io.TextIOWrapper,
    sample: str,
    fmt: str,
    encoding: str,
    options: ReadOptions,
    stream_error: Callable[[Exception], UnreadableFile] | None,
    position: Position | None = None,
) -> RecordFile:
    """A file of JSON lines (``fmt`` "jsonl") or a JSON document ("json"); ``position``: where the
    text is in the file's bytes (a plain file), for JSON lines read in parts by offset."""
    # JSON from systems writes ISO dates; a slash date of a date field in the sample still decides
    # the file's order (only a date field's: "3-14-25" is a house number in an address).
    builder = RecordBuilder(options)
    dates = [
        value
        for key, value in _JSON_SLASH_DATE.findall(sample)
        if (builder.mapper.target(key) or ("", 0))[0] in DATE_FIELDS
    ]
    builder.dates = DateReader(slash_date_order(dates), builder.dates.default_region)
    guard = LineGuard()
    guard.number = 0  # no line read yet
    notes: list[str] = []  # an object's members not read as records, once it has been read
    if fmt == "jsonl":
        rows = _jsonl_rows(text, builder, stream_error, guard)
    else:
        rows = _json_rows(text, builder, stream_error, notes)
    # The keys other systems' records had that map to nothing, listed as they are met.
    record_file = RecordFile(
        format=fmt,
        encoding=encoding,
        delimiter=None,
        columns=[],
        ignored_columns=builder.ignored,
        rows=rows,
        notes=notes,
    )
    if fmt == "jsonl" and position is not None:
        record_file.resumable(_resume_point(position, guard, encoding, builder))
    return record_file


def resume_jsonl(
    text: io.TextIOWrapper, point: ResumePoint, options: ReadOptions, position: Position
) -> RecordFile:
    """The lines of a JSON-lines file after ``point``, ``text`` reading from its offset: with the
    date order the file's start decided and the keys ignored so far; lines keep their numbers."""
    builder = RecordBuilder(options)
    builder.dates = DateReader(point.date_order, builder.dates.default_region)
    builder.ignored = list(point.ignored)
    guard = LineGuard()
    guard.number = point.number
    record_file = RecordFile(
        format="jsonl",
        encoding=point.encoding,
        delimiter=None,
        columns=[],
        ignored_columns=builder.ignored,
        rows=_jsonl_rows(text, builder, None, guard, point.number),
    )
    record_file.resumable(_resume_point(position, guard, point.encoding, builder))
    return record_file


def _resume_point(
    position: Position, guard: LineGuard, encoding: str, builder: RecordBuilder
) -> Callable[[], ResumePoint | None]:
    """Between rows, ``guard.number`` is the last line read and the text stands at the next one."""

    def point() -> ResumePoint | None:
        offset = position.offset()
        if offset is None:
            return None
        return ResumePoint(
            offset=offset,
            number=guard.number,
            format="jsonl",
            encoding=encoding,
            codec=position.codec,
            date_order=builder.dates.order,
            ignored=tuple(builder.ignored),
        )

    return point


def is_wrapper(obj: dict[str, Any]) -> bool:
    """An object that holds records rather than being one (see ``_object_rows``)."""
    if any(name_key(key) in _WRAPPERS and isinstance(value, list) for key, value in obj.items()):
        return True
    if len(obj) != 1:
        return False
    (inner,) = obj.values()
    return isinstance(inner, dict) or (
        isinstance(inner, list) and bool(inner) and all(isinstance(item, dict) for item in inner)
    )


def holds_records(line: str) -> bool:
    """Whether a line of JSON that cannot be decoded (nested too deep, or with a number too long)
    is an object holding a list under a wrapper key, as ``is_wrapper`` says of one that can be (the
    API body on one line): its top-level members are read, undecoded, until one is such a list."""
    cursor = _JsonCursor(io.StringIO(line))
    try:
        cursor.expect("{")
        while cursor.peek() == '"':
            key = cursor.value()
            cursor.expect(":")
            if name_key(key) in _WRAPPERS and cursor.peek() == "[":
                return True
            cursor.element()
            if not cursor.next_item("}", "expected ',' or '}'"):
                break
    except UnreadableFile:
        pass  # cut short at the sample's end, or no JSON: a line as before
    return False


# --- JSON lines -------------------------------------------------------------------------------


def _needs_more(exc: json.JSONDecodeError, size: int) -> bool:
    """Whether a decode error may just be the data ending (not garbage in the middle)."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= size - 8


def _jsonl_rows(
    text: io.TextIOWrapper,
    builder: RecordBuilder,
    stream_error: Callable[[Exception], UnreadableFile] | None,
    guard: LineGuard,
    number: int = 0,  # the line before the first one read
) -> Iterator[Row]:
    loads = json.loads
    check = builder.check_object
    try:
        for line in guarded_lines(text, guard):
            number += 1
            guard.number = number
            if guard.flags != guard.seen_flags:  # cut short, or it held NUL characters
                guard.seen_flags = guard.flags
                reason = guard.reason.replace("the row", f"line {number}")
                yield Row(number, line.strip()[:_RAW_CHARS], None, (reason,))
                continue
            content = line.strip().lstrip("\ufeff")
            if not content:
                continue
            try:
                obj = loads(content)
            except (RecursionError, ValueError) as exc:
                if not isinstance(exc, json.JSONDecodeError):
                    yield Row(number, content[:_RAW_CHARS], None, (f"line {number} {_beyond_limits(exc)}",))
                    continue
                column = exc.colno + len(line) - len(line.lstrip())
                if not line.endswith("\n") and _needs_more(exc, len(content)):
                    raise UnreadableFile(
                        f"truncated JSON at line {number}, column {len(line.rstrip()) + 1}"
                    ) from None
                yield Row(
                    number, content, None, (f"line {number} is not valid JSON: {exc.msg} (column {column})",)
                )
                continue
            record, errors = check(obj)
            yield Row(number, obj, record, errors)
    except STREAM_ERRORS as exc:
        raise (stream_error or read_guard("file"))(exc) from None


_RAW_CHARS: Final = 1000  # what a rejects file keeps of a line that could not be read as JSON


def _beyond_limits(exc: Exception) -> str:
    """Why valid-looking JSON could not be read: too deep, or a number too long for Python."""
    if isinstance(exc, RecursionError):
        return "is not valid JSON here: it is nested too deep"
    return "is not valid JSON here: it holds a number of more than 4,300 digits"


# --- JSON documents: an array of records, or an object with userProperties -------------------

_WHITESPACE: Final = re.compile(r"[ \t\r\n]*")
# What a value nested too deep to decode is skipped by: its brackets, and the rest of each string.
_STRUCTURE: Final = re.compile(r'[\[{]+|[\]}]+|"')
_STRING_REST: Final = re.compile(r'(?:[^"\\]++|\\.)*+"', re.DOTALL)


class _TooLong:
    """Where an element holds an integer too long for ``int``: its digits are not kept."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _int_or_too_long(text: str) -> int | _TooLong:
    try:
        return int(text)
    except ValueError:
        return _TooLong(len(text.lstrip("-")))


def _long_numbers_shown(element: Any) -> tuple[Any, str]:
    """The element with each integer too long for ``int`` written as how many digits it had (for
    the rejects file), and why it is not read, naming where the first one is (in file order)."""
    reason = _beyond_limits(ValueError())
    if isinstance(element, _TooLong):
        return _digits(element), reason
    where = ""
    stack: list[tuple[Iterator[tuple[Any, Any]], Any, str]] = [(_members(element), element, "")]
    while stack:
        members, container, path = stack[-1]
        for key, value in members:
            inner = f"{path}[{key}]" if type(key) is int else f"{path}.{key[:100]}" if path else key[:100]
            if isinstance(value, _TooLong):
                container[key] = _digits(value)
                where = where or inner
            elif isinstance(value, dict | list):
                stack.append((_members(value), value, inner))
                break
        else:
            stack.pop()
    # Not a key that reads like someone's email or phone number (a record keyed by its email).
    return element, reason + (f' (in "{where}")' if where and shown_key(where) == where else "")


def _members(container: dict[str, Any] | list[Any]) -> Iterator[tuple[Any, Any]]:
    return iter(list(container.items() if isinstance(container, dict) else enumerate(container)))


def _digits(number: _TooLong) -> str:
    return f"(a number of {number.digits:,} digits)"


class _JsonCursor:
    """Parses a JSON document value by value from a text stream, knowing line and column."""

    def __init__(self, text: TextIO) -> None:
        self._text = text
        self._decoder = json.JSONDecoder()
        self._lenient = json.JSONDecoder(parse_int=_int_or_too_long)
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line of buf[0]
        self._column = 0  # 0-based column of buf[0]

    def _more(self, at_least: int = _CHUNK_CHARS) -> bool:
        if self.eof:
            return False
        chunk = self._text.read(max(_CHUNK_CHARS, at_least))
        if not chunk:
            self.eof = True
            return False
        if self.pos:
            dropped = self.buf[: self.pos]
            newlines = dropped.count("\n")
            if newlines:
                self._line += newlines
                self._column = len(dropped) - dropped.rfind("\n") - 1
            else:
                self._column += len(dropped)
            self.buf, self.pos = self.buf[self.pos :], 0
        self.buf += chunk
        return True

    def where(self, pos: int) -> str:
        newlines = self.buf.count("\n", 0, pos)
        if newlines:
            column = pos - self.buf.rfind("\n", 0, pos)
            return f"line {self._line + newlines}, column {column}"
        return f"line {self._line}, column {self._column + pos + 1}"

    def truncated(self) -> UnreadableFile:
        return UnreadableFile(f"truncated JSON at {self.where(len(self.buf.rstrip()))}")

    def invalid(self, what: str, pos: int | None = None) -> UnreadableFile:
        return UnreadableFile(f"invalid JSON at {self.where(self.pos if pos is None else pos)}: {what}")

    def peek(self) -> str:
        """The next non-blank character ("" at the end), leaving pos on it."""
        while True:
            match = _WHITESPACE.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self.truncated() if not found else self.invalid(f"expected {char!r}")
        self.pos += 1

    def next_item(self, close: str, expected: str) -> bool:
        """Past the ',' after an item (True: another follows) or the ``close`` after the last (False)."""
        found = self.peek()
        if found == ",":
            self.pos += 1
            return True
        if found == close:
            self.pos += 1
            return False
        raise self.truncated() if not found else self.invalid(expected)

    def value(self) -> Any:
        try:
            return self._decoded(self._decoder)
        except (RecursionError, ValueError) as exc:  # beyond the decoder's limits
            raise UnreadableFile(f"the JSON value at {self.where(self.pos)} {_beyond_limits(exc)}") from None

    def element(self) -> tuple[Any, str]:
        """An array element and ""; or, when it holds a number too long for ``int`` or is nested
        too deep for the decoder, what of it a reject shows and why it is not read. Either way the
        cursor is past it, so the next element is read."""
        try:
            return self._decoded(self._decoder), ""
        except RecursionError:
            pass
        except ValueError:  # an integer of more than 4,300 digits: read again with it left as it is
            try:
                value = self._decoded(self._lenient)
            except RecursionError:
                pass
            else:
                return _long_numbers_shown(value)
        raw = self.buf[self.pos : self.pos + _RAW_CHARS]
        self._skip_container()
        return raw, _beyond_limits(RecursionError())

    def _decoded(self, decoder: json.JSONDecoder) -> Any:
        """The value at pos, the cursor past it; a JSON error is the file's (UnreadableFile), a limit
        of the decoder (RecursionError, or ValueError for a number too long) is raised as it is."""
        if not self.peek():
            raise self.truncated()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if _needs_more(exc, len(self.buf)) and len(self.buf) - self.pos > MAX_LINE_CHARS:
                    raise self._too_large() from None
                if _needs_more(exc, len(self.buf)) and self._more(len(self.buf)):
                    continue
                if self.eof and _needs_more(exc, len(self.buf)):
                    raise self.truncated() from None
                raise self.invalid(exc.msg, exc.pos) from None
            if end == len(self.buf) and self._more():
                continue  # a number or literal may go on in the next chunk
            if end - self.pos > MAX_LINE_CHARS:
                raise self._too_large()
            self.pos = end
            return value

    def _skip_container(self) -> None:
        """Past the array or object at pos without decoding it (it is nested too deep to decode):
        strings are skipped whole and brackets counted, within the size limit of any value. Its
        brackets are not checked to pair up: it is a reject already, and what follows it is read
        as JSON again."""
        if self.buf[self.pos] not in "[{":  # only a container can be nested too deep
            raise self.invalid("a value too deep to decode that is no array or object")
        depth = 0
        offset = 0  # how far from pos the scan has come (pos moves to 0 when more is read)
        while True:
            buf, start = self.buf, self.pos
            limit = min(len(buf), start + MAX_LINE_CHARS + 1)
            at = start + offset
            while found := _STRUCTURE.search(buf, at, limit):
                at = found.end()
                run = at - found.start()
                char = buf[at - 1]
                if char == '"':
                    closed = _STRING_REST.match(buf, at, limit)
                    if closed is None:  # the string goes on past what is read: scan it again
                        at = found.start()
                        break
                    at = closed.end()
                elif char in "[{":
                    depth += run
                elif run < depth:
                    depth -= run
                else:  # its last bracket closes it
                    self.pos = found.start() + depth
                    return
            else:
                at = limit
            offset = at - start
            if len(buf) - start > MAX_LINE_CHARS:
                raise self._too_large()
            if not self._more(len(buf)):
                raise self.truncated()

    def _too_large(self) -> UnreadableFile:
        return UnreadableFile(
            f"the JSON value at {self.where(self.pos)} is larger than {MAX_LINE_CHARS:,} characters: "
            "no customer record is that large"
        )


def _json_rows(
    text: io.TextIOWrapper,
    builder: RecordBuilder,
    stream_error: Callable[[Exception], UnreadableFile] | None,
    notes: list[str],
) -> Iterator[Row]:
    cursor = _JsonCursor(text)
    check = builder.check_object
    try:
        first = cursor.peek()
        if first == "[":
            yield from _array_rows(cursor, check)
        elif first == "{":
            yield from _object_rows(cursor, check, notes)
        else:
            raise cursor.invalid("a file of records is a JSON array, an object or JSON lines")
        if cursor.peek():
            raise cursor.invalid("unexpected data after the end of the JSON document")
    except STREAM_ERRORS as exc:
        raise (stream_error or read_guard("file"))(exc) from None


def _array_rows(
    cursor: _JsonCursor, check: Callable[[Any], Any], *, opened: bool = False
) -> Generator[Row, None, int]:
    """The rows of an array (``opened``: past its ``[`` already, and not empty); returns how many."""
    if not opened and _open_array(cursor):
        return 0
    number = 0
    while True:
        if not cursor.peek():
            raise cursor.truncated()
        element, beyond_limits = cursor.element()
        number += 1
        if beyond_limits:  # as a JSON line would be, this one element is the reject
            yield Row(number, element, None, (f"record {number} {beyond_limits}",))
        else:
            record, errors = check(element)
            yield Row(number, element, record, errors)
        if not cursor.next_item("]", "expected ',' or ']' after an array element"):
            return number


def _open_array(cursor: _JsonCursor) -> bool:
    """Past the array's ``[``; True when it is empty (then past its ``]`` too)."""
    cursor.expect("[")
    if cursor.peek() == "]":
        cursor.pos += 1
        return True
    return False


# Keys under which systems wrap their list of records: {"customers": [...]}, {"data": [...], "meta": ...}.
_WRAPPERS: Final = frozenset(
    name_key(key)
    for key in (
        "userProperties", "customers", "contacts", "data", "results", "records", "items", "users",
        "members", "subscribers", "profiles", "people", "leads", "rows", "entries",
    )
)  # fmt: skip


def _object_rows(cursor: _JsonCursor, check: Callable[[Any], Any], notes: list[str]) -> Iterator[Row]:
    """An object holding one list of records (the API body ``{"userProperties": [...]}``, or
    ``{"customers": [...]}`` and the like; other keys are metadata, named in ``notes`` as not read),
    one wrapped record (``{"customer": {...}}``), or one record. An object with two lists of records
    is refused whole (``RefusedWhole``)."""
    cursor.expect("{")
    single: dict[str, Any] = {}
    records_key = yield from _object_members(cursor, check, single)
    if not records_key:
        yield from _single_rows(single, check)
    elif single:
        notes.append(_not_read(records_key, single))


def _object_members(
    cursor: _JsonCursor, check: Callable[[Any], Any], single: dict[str, Any]
) -> Generator[Row, None, str]:
    """The rows of the object's list of records, if it has one (its key is returned); every other
    member goes into ``single``.

    A second list under a wrapper key, once a first has given rows, is refused whole: nothing tells
    which of the two holds the people (``{"contacts": [...], "users": [...]}`` is a CRM's contacts
    with its own users), and reading both, or either, would send what the file did not mean. An
    empty list under a wrapper key is no list of records.
    """
    records_key = ""
    rows = 0
    nested = ""  # a member that wraps a list of records ({"data": {"customers": [...]}}): its path
    if cursor.peek() == "}":
        cursor.pos += 1
        return records_key
    while True:
        if cursor.peek() != '"':
            raise cursor.truncated() if not cursor.peek() else cursor.invalid("expected a key")
        key = cursor.value()
        cursor.expect(":")
        if isinstance(key, str) and name_key(key) in _WRAPPERS and cursor.peek() == "[":
            if _open_array(cursor):  # an empty list: the records, unless another list has some
                if records_key:
                    single.setdefault(key, [])
                records_key = records_key or key
            elif rows or nested:
                raise _two_lists(nested or records_key, key)
            else:
                if records_key:  # the list met first was empty
                    single.setdefault(records_key, [])
                records_key = key
                rows = yield from _array_rows(cursor, check, opened=True)
        else:
            value = cursor.value()
            nested = nested or _wrapped_path(key, value)
            if nested and rows:  # a list of records one level down, after the one at the top
                raise _two_lists(records_key, nested)
            _keep_member(single, key, value)
        if not cursor.next_item("}", "expected ',' or '}'"):
            return records_key


def _wrapped_path(key: Any, value: Any) -> str:
    """The path of the list of records (not empty) a member wraps, as ``_single_rows`` would find it
    (``data.customers`` for ``"data": {"customers": [...]}``); "" when it wraps none."""
    path = [str(key)]
    for _ in range(_MAX_WRAPPING):
        if not isinstance(value, dict):
            return ""
        for inner_key, inner in value.items():
            if name_key(inner_key) in _WRAPPERS and isinstance(inner, list) and inner:
                return ".".join([*path, inner_key])
        if len(value) != 1:
            return ""
        ((inner_key, value),) = value.items()
        path.append(inner_key)
    return ""


def _keep_member(single: dict[str, Any], key: Any, value: Any) -> None:
    single[key] = value
    if len(single) > _MAX_OBJECT_KEYS:
        raise UnreadableFile(f"the JSON object has more than {_MAX_OBJECT_KEYS:,} keys: it is not one record")


def _two_lists(first: str, second: str) -> RefusedWhole:
    return RefusedWhole(
        f'the JSON object holds two lists of records, under "{first[:100]}" and "{second[:100]}": '
        "nothing tells which one holds the people to send, so none is read; upload each list as a "
        f"file of its own (for example jq '.{first[:100]}' file.json > {first[:100]}.json)"
    )


_LISTED_MEMBERS: Final = 10


def _not_read(records_key: str, members: dict[str, Any]) -> str:
    """The report's note on an object's members other than its list of records."""
    named = [
        f'"{key[:100]}"' + (f" (a list of {len(value):,})" if isinstance(value, list) else "")
        for key, value in list(members.items())[:_LISTED_MEMBERS]
    ]
    more = f" and {len(members) - _LISTED_MEMBERS:,} more" if len(members) > _LISTED_MEMBERS else ""
    return f'records read from the list under "{records_key[:100]}"; not read: {", ".join(named)}{more}'


def _single_rows(single: dict[str, Any], check: Callable[[Any], Any]) -> Iterator[Row]:
    """An object without a list of records: one record, wrapped or not, or a list under any key."""
    for _ in range(_MAX_WRAPPING):
        if len(single) != 1:
            break
        (inner,) = single.values()
        if isinstance(inner, dict):  # {"customer": {...}}, or {"data": {"customers": [...]}}
            records = _wrapped_list(inner)
            if records is None:
                single = inner
                continue
            inner = records
        if isinstance(inner, list) and inner and all(isinstance(item, dict) for item in inner):
            for number, element in enumerate(inner, 1):  # {"anything": [{...}, ...]}
                record, errors = check(element)
                yield Row(number, element, record, errors)
            return
        break
    record, errors = check(single)
    yield Row(1, single, record, errors)


# {"data": {"customers": [...]}}: wrappers in wrappers, as far as a few levels go.
_MAX_WRAPPING: Final = 4


def _wrapped_list(obj: dict[str, Any]) -> list[Any] | None:
    """The list of records an object wraps under a wrapper key (``customers``...), if it does; two
    that are not empty are refused, as at the top (``_object_members``)."""
    found: list[tuple[str, list[Any]]] = [
        (key, value) for key, value in obj.items() if name_key(key) in _WRAPPERS and isinstance(value, list)
    ]
    full = [(key, value) for key, value in found if value]
    if len(full) > 1:
        raise _two_lists(full[0][0], full[1][0])
    chosen = full or found
    return chosen[0][1] if chosen else None
