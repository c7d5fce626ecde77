"""JSON as bytes, through orjson, with exactly the bytes the standard library gives.

Records become JSON on every hot path (work messages, BIK bodies, digests, rejects), and some of
those bytes are compared: signatures and digests over encoded records, stored progress. So
:func:`dumps` returns the very bytes of ``json.dumps(obj, separators=(",", ":"), ensure_ascii=...,
default=...).encode("utf-8", errors)``, made by orjson where orjson makes the same.

Where orjson would differ, the standard library does the work instead:

- only exact ``dict``, ``list``, ``tuple``, ``str``, ``int``, ``bool`` and ``None`` go to orjson
  (no floats: orjson writes ``1e-7`` where json writes ``1e-07``, and NaN as ``null``; no
  subclasses, dataclasses, datetimes, enums or UUIDs, which orjson would encode and json would not
  or would differently); what our record core produces is all of that kind;
- what orjson refuses among those (an int beyond 64 bits, a lone surrogate, a key that is not a
  str, nesting past its limit) goes to json too, which encodes it or raises as it always did;
- ``ensure_ascii``: orjson writes UTF-8, so the characters json escapes (DEL and everything beyond
  ASCII) are escaped afterwards the way json escapes them (they can only occur inside strings).

Decoding stays with json: orjson reads an integer beyond 64 bits as a float, and checking a decoded
message for floats costs about what orjson saves (measured on a 100-record work message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

import orjson

_COMPACT: Final = (",", ":")
# Subclasses of str/int/dict/list, dataclasses and datetimes go to ``default``: there is none, so
# orjson raises TypeError for them (they do not get this far anyway: see _plain).
_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)
_SCALARS: Final = frozenset({str, int, bool, type(None)})
# More items than any record holds: past this json does the work (and detects a cycle, if that is why).
_MAX_ITEMS: Final = 100_000
_SHORT_LIST: Final = 1000  # a record's list looked at in place, without the walk's stack
# What json's ensure_ascii escapes beyond what both encoders escape (controls, quote, backslash).
_NOT_ASCII: Final = re.compile("[^\x00-\x7e]")  # every character from DEL on (the complement compiles fast)


def dumps(
    obj: Any,
    *,
    ensure_ascii: bool = False,
    default: Callable[[Any], Any] | None = None,
    errors: str = "strict",
) -> bytes:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=..., default=...).encode("utf-8", errors)``.

    Raises what that raises (TypeError for what JSON cannot hold, ValueError for a lone surrogate
    with ``errors="strict"``, RecursionError for nesting too deep).
    """
    if _plain(obj):
        try:
            out = orjson.dumps(obj, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: beyond 64 bits, a surrogate, a non-str key, too deep
            pass
        else:
            if not ensure_ascii or (out.isascii() and b"\x7f" not in out):
                return out
            return _NOT_ASCII.sub(_escape, out.decode("utf-8")).encode("ascii")
    text = json.dumps(obj, separators=_COMPACT, ensure_ascii=ensure_ascii, default=default)
    return text.encode("utf-8", errors)


def _plain(obj: Any) -> bool:
    """Only the types orjson encodes exactly as json does (see the module's docstring)."""
    if type(obj) is dict:  # a record: mostly scalars, so look at them before walking anything
        scalars = _SCALARS
        for value in obj.values():
            kind = type(value)
            if kind in scalars:
                continue
            if kind is list and len(value) <= _SHORT_LIST:  # tags: a list of strings, looked at here
                for item in value:
                    if type(item) not in scalars:
                        return _plain_nested(obj)
                continue
            return _plain_nested(obj)
        return True
    return _plain_nested(obj)


def _plain_nested(obj: Any) -> bool:
    stack = [obj]
    seen = 0
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            seen += len(item)
            if seen > _MAX_ITEMS:
                return False
            stack.extend(item.values() if kind is dict else item)
        elif kind not in _SCALARS:
            return False
    return True


def _escape(match: re.Match[str]) -> str:
    """json's ``\\uXXXX`` escape of one character (a surrogate pair beyond the BMP)."""
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
