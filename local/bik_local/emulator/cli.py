"""``bik-sync emulator`` (or ``python -m bik_local.emulator``): serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from bik_local.emulator.contract import DEFAULT_TOKEN, FAULTS_PATH
from bik_local.emulator.faults import KNOB_HELP, Faults, apply_knobs, knob_names
from bik_local.emulator.server import DEFAULT_PORT, start_emulator

# How each knob is read from the command line; the rest are shares between 0 and 1.
_KNOB_TYPES: dict[str, Any] = {"latency_ms": int, "poison_value": str, "fail_value": str}

_EPILOG = f"""\
token:
  One Basic token is accepted at a time ("Authorization: Basic <token>", the token being base64
  of API_KEY:API_SECRET as for BIK); any other is answered 401. Unless --token gives another, it
  is base64 of local-key:local-secret:
    {DEFAULT_TOKEN}

faults:
  Every knob is off by default. At most one rate fault (reset, hang, throttle, error, malformed)
  is drawn per authorised upsert request; --seed makes the draws reproducible. While it runs,
  POST {FAULTS_PATH} with a JSON object of knobs (the names above with underscores, e.g.
  {{"error_rate": 0.2}}; "rotate_token" accepts another token) changes them; the knobs not named
  keep their values. POST /__emulator/reset turns them all off again (and clears the users and
  counters, and brings back the starting token)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bik-sync emulator",
        description="Run the BIK API emulator on loopback.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free port)"
    )
    parser.add_argument(
        "--token",
        default=DEFAULT_TOKEN,
        help="the Basic token accepted (base64 of API_KEY:API_SECRET; default: local-key:local-secret)",
    )
    parser.add_argument(
        "--app-id",
        metavar="ID",
        help="require this appId in every upsert and authPartnerViaKey body (default: appId optional)",
    )
    knobs = parser.add_argument_group("fault knobs")
    for name in knob_names():
        knobs.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=_KNOB_TYPES.get(name, float),
            metavar=name.upper(),
            help=KNOB_HELP[name],
        )
    parser.add_argument("--seed", type=int, help="seed for the fault draws, for a reproducible run")
    return parser


def _iter_knob_args(args: argparse.Namespace) -> Iterator[tuple[str, object]]:
    for name in knob_names():
        value = getattr(args, name)
        if value is not None:
            yield name, value


def main(argv: list[str]) -> int:
    """``bik-sync emulator``: serve until SIGINT/SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults, _ = apply_knobs(Faults(), dict(_iter_knob_args(args)))
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    emulator = start_emulator(
        host=args.host, port=args.port, token=args.token, faults=faults, seed=args.seed, app_id=args.app_id
    )
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"BIK emulator listening on {emulator.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
