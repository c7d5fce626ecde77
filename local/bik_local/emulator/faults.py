"""The fault knobs: what each does, how they are set (``POST /__emulator/faults`` or the command
line) and which fault a request draws.

- ``error``, ``throttle``, ``hang`` and ``reset`` faults happen before the batch is applied (the
  store is untouched); a ``malformed`` 200 applies the batch and then garbles the reply, as a
  broken proxy would, so a retry counts updates instead of creates.
- ``fail_value`` answers 500 to every batch holding that value (after the ``poison_value`` check,
  before anything is stored): an outage that hits some records only, so a test can make part of a
  work message fail on every try while the rest goes in.
- At most one random fault per authorised upsert request, one seeded draw each, so a run with a
  seed is reproducible for a given request order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

HANG_SECONDS: Final = 60.0
# A 200 whose body is cut off mid-JSON: what a client sees from a broken proxy or a dropped stream.
MALFORMED_BODY: Final = b'{"status": 200, "data": {"invalidUserProperties": [], "bulkUpsertUPRes'

#: Every fault the emulator counts in ``faults_served``.
FAULT_NAMES: Final = ("error", "throttle", "hang", "reset", "malformed", "poison", "fail", "unauthorized")


@dataclass
class Faults:
    """Fault knobs; every one is off by default. Rates are shares of authorised upsert requests."""

    latency_ms: int = 0
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after_s: float = 1.0
    hang_rate: float = 0.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    poison_value: str | None = None
    fail_value: str | None = None


#: What each knob does, for ``--help`` and the README. ``rotate_token`` is set like a knob but is
#: not one of the Faults (it changes the token the emulator accepts).
KNOB_HELP: Final[Mapping[str, str]] = {
    "latency_ms": "wait this many milliseconds before answering each upsert request (default 0)",
    "error_rate": "share (0-1) of authorised upserts answered 500, the batch not applied",
    "throttle_rate": "share (0-1) of authorised upserts answered 429 with a Retry-After header, "
    "the batch not applied",
    "retry_after_s": "the Retry-After of those 429s, in seconds; fractions allowed (default 1)",
    "hang_rate": "share (0-1) of authorised upserts held without a reply until the client hangs up "
    f"(at most {HANG_SECONDS:.0f} s), the batch not applied",
    "reset_rate": "share (0-1) of authorised upserts whose connection is reset (TCP RST), "
    "the batch not applied",
    "malformed_rate": "share (0-1) of authorised upserts whose batch IS applied, then answered "
    "with a 200 whose JSON is cut off",
    "poison_value": "answer 400 '\"userProperties[i].<field>\" contains an invalid value' to any "
    "batch holding this value, the batch not applied (unset or null: off)",
    "fail_value": "answer 500 to any batch holding this value, after the poison check, the batch "
    "not applied (unset or null: off)",
    "rotate_token": "accept only this Basic token from now on (POST /__emulator/faults only; "
    "the command line has --token)",
}

_FAULT_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Faults))
# Rate knob -> the fault it draws, in the order their bands are laid out on [0, 1).
_RATE_FAULT: Final = {
    "reset_rate": "reset",
    "hang_rate": "hang",
    "throttle_rate": "throttle",
    "error_rate": "error",
    "malformed_rate": "malformed",
}


def knob_names() -> list[str]:
    """The Faults knobs in their declared order (``rotate_token`` is not one)."""
    return [f.name for f in dataclasses.fields(Faults)]


def apply_knobs(current: Faults, knobs: Mapping[str, object]) -> tuple[Faults, str | None]:
    """Return ``current`` with ``knobs`` applied and the token to rotate to, or raise ValueError."""
    updates: dict[str, Any] = {}
    new_token: str | None = None
    for key, value in knobs.items():
        if key == "rotate_token":
            if not isinstance(value, str) or not value:
                raise ValueError('"rotate_token" must be a non-empty string')
            new_token = value
        elif key not in _FAULT_FIELDS:
            raise ValueError(f'"{key}" is not allowed')
        else:
            updates[key] = _knob_value(key, value)
    return dataclasses.replace(current, **updates), new_token


def _knob_value(key: str, value: object) -> object:
    if key in ("poison_value", "fail_value"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f'"{key}" must be a string or null')
        return value
    if key in ("latency_ms", "retry_after_s"):
        if not _is_number(value) or cast(float, value) < 0:
            raise ValueError(f'"{key}" must be a number >= 0')
        number = cast(float, value)
        return int(number) if key == "latency_ms" else float(number)
    if not _is_number(value) or not 0.0 <= cast(float, value) <= 1.0:
        raise ValueError(f'"{key}" must be a number between 0 and 1')
    return float(cast(float, value))


def _is_number(value: object) -> bool:
    # bool is an int subclass; `true` is not a rate.
    return isinstance(value, int | float) and not isinstance(value, bool)


def pick_fault(faults: Faults, roll: float) -> str | None:
    """The fault a draw of ``roll`` in [0, 1) lands on; the bands of the rates do not overlap."""
    edge = 0.0
    for knob, fault in _RATE_FAULT.items():
        edge += cast(float, getattr(faults, knob))
        if roll < edge:
            return fault
    return None


def retry_after_header(seconds: float) -> str:
    # Whole seconds as HTTP says; fractions kept so tests can use short waits.
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))
