"""Time left: one notion of an invocation's deadline for ingest, the worker and delivery.

A :class:`Deadline` is built once from Lambda's context (or a test's scripted clock) and passed
down; each stage reserves its own finishing time with :meth:`Deadline.reserve`, and delivery gets
the instant on the monotonic clock (:meth:`Deadline.at`) that the BIK client compares against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

# Lambda's longest invocation: the deadline of a call that has no context (tests, scripts).
LAMBDA_MAX_S = 900.0
# Time ingest keeps for sending the last batches, the rejects file, the counters and the report.
INGEST_FINISH_S = 60.0
# An invocation shorter than a few minutes (the local stack's, for tests) keeps this share instead.
INGEST_FINISH_SHARE = 0.25
# Time the worker keeps for writing rejects, counters and the report after delivery.
WORKER_FINISH_S = 10.0


class _HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """When the work must be done by, as the time left (asked each time, never cached)."""

    __slots__ = ("_clock", "_remaining_ms")

    def __init__(
        self, remaining_ms: Callable[[], float], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._remaining_ms = remaining_ms
        self._clock = clock

    @classmethod
    def from_context(cls, context: _HasRemainingTime) -> Deadline:
        """The invocation's own deadline, from Lambda's context."""
        return cls(context.get_remaining_time_in_millis)

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """A deadline ``seconds`` from now on ``clock``."""
        end = clock() + seconds
        return cls(lambda: (end - clock()) * 1000, clock=clock)

    @classmethod
    def unlimited(cls) -> Deadline:
        """As long as Lambda ever allows, whatever time it is: for calls made outside an invocation."""
        return cls(lambda: LAMBDA_MAX_S * 1000)

    def remaining_s(self) -> float:
        return self._remaining_ms() / 1000

    def expired(self) -> bool:
        """True once the time left has gone below zero."""
        return self.remaining_s() < 0

    def reserve(self, seconds: float) -> Deadline:
        """This deadline, ``seconds`` earlier: the time kept back for finishing."""
        remaining_ms = self._remaining_ms
        return Deadline(lambda: remaining_ms() - seconds * 1000, clock=self._clock)

    def at(self) -> float:
        """The deadline as a value of the monotonic clock (what the BIK client and delivery take)."""
        return self._clock() + self.remaining_s()


def finish_margin_s(deadline: Deadline) -> float:
    """The time ingest keeps for finishing: INGEST_FINISH_S, or a quarter of what is left if less."""
    return min(INGEST_FINISH_S, deadline.remaining_s() * INGEST_FINISH_SHARE)
