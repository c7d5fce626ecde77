"""Progress on stderr: a tqdm bar on a terminal, plain periodic lines otherwise, nothing with --json.

One display for ``bik-sync push`` (bytes of the file read, so the ETA comes from bytes), ``bik-sync
status --watch`` and ``make demo`` (batches done of the job). Only counts are shown: never a record.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TextIO

from tqdm import tqdm

Fields = Mapping[str, int | str]


class Progress(Protocol):
    def update(self, done: int, fields: Fields, total: int | None = None) -> None:
        """``done`` of ``total`` units so far (``total`` None: unchanged), and the counts to show."""

    def close(self) -> None:
        """The last state stays on screen; the cursor ends on a fresh line."""


def describe(fields: Fields) -> str:
    return "  ".join(
        f"{name} {value:,}" if isinstance(value, int) else f"{name} {value}" for name, value in fields.items()
    )


class Silent:
    def update(self, done: int, fields: Fields, total: int | None = None) -> None:
        return

    def close(self) -> None:
        return


class Bar:
    """A tqdm bar (a maintained library, not hand-drawn); the counts go in its postfix."""

    def __init__(self, label: str, total: int | None, unit: str, stream: TextIO, *, bytes_unit: bool) -> None:
        sized = _columns(stream) > 0  # a terminal that reports no size (a bare pty) gets a fixed width
        self._bar = tqdm(
            total=total,
            desc=label,
            unit=unit,
            unit_scale=bytes_unit,
            unit_divisor=1024 if bytes_unit else 1000,
            file=stream,
            dynamic_ncols=sized,
            ncols=None if sized else 120,
            nrows=None if sized else 24,
            leave=True,
            mininterval=0.2,
        )

    def update(self, done: int, fields: Fields, total: int | None = None) -> None:
        if total is not None and total != self._bar.total:
            self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(describe(fields), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


class Lines:
    """A plain line every ``interval_s`` (and a last one at the end), for logs and pipes."""

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._total = total
        self._stream = stream
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._last_line = self._started
        self._state: tuple[int, Fields] = (0, {})
        self._dirty = False

    def update(self, done: int, fields: Fields, total: int | None = None) -> None:
        if total is not None:
            self._total = total
        self._state, self._dirty = (done, fields), True
        if self._clock() - self._last_line >= self._interval_s:
            self._line()

    def close(self) -> None:
        if self._dirty:
            self._line()

    def _line(self) -> None:
        now = self._clock()
        done, fields = self._state
        share = ""
        if self._total:
            share = f" {min(100, done * 100 // self._total)}%"
            elapsed = now - self._started
            if 0 < done < self._total and elapsed > 0:
                share += f" (ETA {_clock_text(elapsed * (self._total - done) / done)})"
        print(f"{self._label}:{share} {describe(fields)}".rstrip(), file=self._stream, flush=True)
        self._last_line, self._dirty = now, False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


def _clock_text(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:d}:{rest % 60:02d}"


def make_progress(
    label: str,
    total: int | None,
    *,
    unit: str = "B",
    quiet: bool = False,
    stream: TextIO | None = None,
    interval_s: float = 5.0,
) -> Progress:
    """A bar when ``stream`` (stderr) is a terminal, lines when it is not, nothing when ``quiet``."""
    out = sys.stderr if stream is None else stream
    if quiet:
        return Silent()
    if out.isatty():
        return Bar(label, total, unit, out, bytes_unit=unit == "B")
    return Lines(label, total, out, interval_s=interval_s)
