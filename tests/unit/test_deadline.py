"""One notion of time left: a Deadline from Lambda's context, reserved for finishing, handed on."""

from __future__ import annotations

from bik_sync.clock import Deadline


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_reserved_deadline_expires_the_margin_earlier_than_the_invocation() -> None:
    # Given 70 s left on a clock, and 60 s of it kept for finishing
    clock = Clock()
    deadline = Deadline.after(70, clock=clock)
    reading = deadline.reserve(60)
    # When 9 s pass, then there is time left to read; when 11 s pass, there is none
    clock.now += 9
    assert not reading.expired() and round(reading.remaining_s(), 6) == 1
    clock.now += 2
    assert reading.expired() and not deadline.expired()


def test_the_deadline_as_an_instant_is_the_clock_plus_the_time_left() -> None:
    clock = Clock()
    deadline = Deadline(lambda: 12_500, clock=clock).reserve(10)
    assert deadline.at() == clock.now + 2.5


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 42_000


def test_a_deadline_from_lambdas_context_asks_the_context_for_the_time_left() -> None:
    assert Deadline.from_context(_Context()).remaining_s() == 42.0
    assert Deadline.unlimited().remaining_s() == 900.0
