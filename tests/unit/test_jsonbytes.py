"""jsonbytes (orjson) gives the very bytes of the standard library's json, odd values included."""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bik_sync import jsonbytes
from bik_sync.records import API_FIELDS

# Any code point, lone surrogates included (a JSON escape in an input file can produce one).
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=12)
# What the record core produces: API fields holding text, booleans and lists of text.
CORE_VALUE = st.one_of(ANY_TEXT, st.booleans(), st.lists(ANY_TEXT, max_size=4))
CORE_RECORD = st.dictionaries(st.sampled_from(sorted(API_FIELDS)) | ANY_TEXT, CORE_VALUE, max_size=10)


class Colour(enum.Enum):
    RED = "red"


class Text(str):
    pass


ODD_SCALAR = st.one_of(
    st.none(),
    st.integers(),  # beyond 64 bits too
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),  # 1e-07 vs 1e-7, NaN, inf
    st.sampled_from([datetime.date(2026, 1, 2), Colour.RED, Text("sub"), b"bytes", 1.5j]),
)
ODD_VALUE = st.recursive(
    ODD_SCALAR | CORE_VALUE,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(ANY_TEXT | st.integers() | st.booleans() | st.none(), inner, max_size=3)
    ),
    max_leaves=12,
)
ODD_RECORD = st.dictionaries(
    ANY_TEXT | st.sampled_from([1, 2.5, None, True, Text("k")]), ODD_VALUE, max_size=6
)


def _outcome(encode: Callable[[], bytes]) -> tuple[str, Any]:
    try:
        return "bytes", encode()
    except (TypeError, ValueError, RecursionError) as exc:
        return "raises", type(exc)


def _old(obj: Any, ensure_ascii: bool, default: Callable[[Any], Any] | None, errors: str) -> bytes:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=ensure_ascii, default=default)
    return text.encode("utf-8", errors)


def _same_bytes(obj: Any, ensure_ascii: bool, default: Callable[[Any], Any] | None, errors: str) -> None:
    old = _outcome(lambda: _old(obj, ensure_ascii, default, errors))
    new = _outcome(lambda: jsonbytes.dumps(obj, ensure_ascii=ensure_ascii, default=default, errors=errors))
    assert new == old


@settings(max_examples=100, deadline=None)
@given(CORE_RECORD, st.booleans(), st.sampled_from(["strict", "backslashreplace"]))
def test_records_of_the_record_core_encode_to_the_bytes_json_gives(
    record: dict[str, Any], ensure_ascii: bool, errors: str
) -> None:
    # Given a record as the record core makes them; When encoded; Then json's bytes (or json's error)
    _same_bytes(record, ensure_ascii, None, errors)


@settings(max_examples=100, deadline=None)
@given(
    ODD_RECORD,
    st.booleans(),
    st.sampled_from([None, str]),
    st.sampled_from(["strict", "backslashreplace"]),
)
def test_odd_values_encode_to_the_bytes_json_gives_or_fail_as_json_fails(
    record: dict[Any, Any], ensure_ascii: bool, default: Callable[[Any], Any] | None, errors: str
) -> None:
    # Given huge ints, floats, NaN, surrogates, non-str keys, subclasses, dates, enums, nesting
    _same_bytes(record, ensure_ascii, default, errors)


@pytest.mark.parametrize(
    "obj",
    [
        [[[[]]]] * 3,
        json.loads("[" * 300 + "]" * 300),  # deeper than orjson goes
        {"a": "\x7f\u00e9\u2028\U0001f600\ud800"},
    ],
)
def test_deep_nesting_and_characters_json_escapes_give_json_bytes(obj: Any) -> None:
    for ensure_ascii in (False, True):
        _same_bytes(obj, ensure_ascii, None, "backslashreplace")


def test_a_cycle_fails_as_json_fails() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(ValueError, match="Circular reference"):
        jsonbytes.dumps(cycle)
