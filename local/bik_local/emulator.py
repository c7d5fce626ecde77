"""BIK API emulator: a real HTTP server on loopback that keeps the contract in DESIGN.md.

Integration tests, the demo and the benchmarks talk to it over HTTP exactly as the deployed code
talks to BIK: Basic auth, the bulk upsert with Joi-style per-record validation, create vs update
by identity, plus fault knobs (latency, 500s, 429s with Retry-After, hangs, connection resets,
non-JSON 200s, poisoned batches, batches that keep failing, token rotation) and an inspection API
under ``/__emulator/``.

Semantics worth knowing when you test against it:

- ``error``, ``throttle``, ``hang`` and ``reset`` faults happen before the batch is applied (the
  store is untouched); a ``malformed`` 200 applies the batch and then garbles the reply, as a
  broken proxy would, so a retry counts updates instead of creates.
- ``fail_value`` answers 500 to every batch holding that value (after the ``poison_value`` check,
  before anything is stored): an outage that hits some records only, so a test can make part of a
  work message fail on every try while the rest goes in.
- At most one random fault per authorised upsert request, one seeded draw each, so a run with a
  seed is reproducible for a given request order.
- ``records_received`` counts records of batches that reached validation, so
  ``records_received == created + updated + invalid`` always holds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hmac
import json
import logging
import random
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Final, cast

UPSERT_PATH: Final = "/integrations/bikPlatformFunctions-createOrUpdateUserProperties"
AUTH_PATH: Final = "/integrations/bikPlatformFunctions-authPartnerViaKey"
STATE_PATH: Final = "/__emulator/state"
USERS_PATH: Final = "/__emulator/users"
RESET_PATH: Final = "/__emulator/reset"
FAULTS_PATH: Final = "/__emulator/faults"

DEFAULT_TOKEN: Final = base64.b64encode(b"local-key:local-secret").decode("ascii")
DEFAULT_PORT: Final = 8765
STORE_ID: Final = "emulator-store"
HANG_SECONDS: Final = 60.0
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
# A 200 whose body is cut off mid-JSON: what a client sees from a broken proxy or a dropped stream.
MALFORMED_BODY: Final = b'{"status": 200, "data": {"invalidUserProperties": [], "bulkUpsertUPRes'

logger = logging.getLogger(__name__)

# Field name -> kind, in the order the API's Joi schema checks them (the first problem wins).
SCHEMA: Final[Mapping[str, str]] = {
    "firstName": "name",
    "lastName": "name",
    "source": "string",
    "phoneNumber": "string",
    "alternatePhoneNumber": "string",
    "email": "string",
    "address1": "string",
    "address2": "string",
    "city": "string",
    "state": "string",
    "country": "string",
    "createdAt": "date",
    "updatedAt": "date",
    "emailMarketingConsent": "boolean",
    "smsMarketingConsent": "boolean",
    "tags": "tags",
    "partnerCustomerId": "string",
}
# Matching order for upserts: the most specific identity first.
IDENTITY_KEYS: Final = ("partnerCustomerId", "phoneNumber", "email")
NO_IDENTITY_MESSAGE: Final = '"value" must contain at least one of [phoneNumber, email, partnerCustomerId]'
FAULT_NAMES: Final = ("error", "throttle", "hang", "reset", "malformed", "poison", "fail", "unauthorized")
_RATE_KNOBS: Final = ("reset_rate", "hang_rate", "throttle_rate", "error_rate", "malformed_rate")
_RATE_FAULT: Final = {
    "reset_rate": "reset",
    "hang_rate": "hang",
    "throttle_rate": "throttle",
    "error_rate": "error",
    "malformed_rate": "malformed",
}


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


_FAULT_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Faults))


def _is_number(value: object) -> bool:
    # bool is an int subclass; `true` is not a rate.
    return isinstance(value, int | float) and not isinstance(value, bool)


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
        elif key in ("poison_value", "fail_value"):
            if value is not None and not isinstance(value, str):
                raise ValueError(f'"{key}" must be a string or null')
            updates[key] = value
        elif key == "latency_ms":
            if not _is_number(value) or cast(float, value) < 0:
                raise ValueError('"latency_ms" must be a number >= 0')
            updates[key] = int(cast(float, value))
        elif key == "retry_after_s":
            if not _is_number(value) or cast(float, value) < 0:
                raise ValueError('"retry_after_s" must be a number >= 0')
            updates[key] = float(cast(float, value))
        else:
            if not _is_number(value) or not 0.0 <= cast(float, value) <= 1.0:
                raise ValueError(f'"{key}" must be a number between 0 and 1')
            updates[key] = float(cast(float, value))
    return dataclasses.replace(current, **updates), new_token


# --- validation -------------------------------------------------------------------------------


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _field_problem(key: str, kind: str, value: object) -> str | None:
    if kind == "name":
        if not isinstance(value, str):
            return f'"{key}" must be a string'
        return f'"{key}" is not allowed to be empty' if not value.strip() else None
    if kind == "tags":
        return _tags_problem(key, value)
    # Empty optional strings pass: the real API's stance is unknown and refusing them would
    # turn blank CSV cells into rejects.
    checks: dict[str, tuple[Callable[[object], bool], str]] = {
        "string": (lambda v: isinstance(v, str), "must be a string"),
        "date": (_is_date, "must be a valid date"),
        "boolean": (lambda v: isinstance(v, bool), "must be a boolean"),
    }
    if kind in checks and not checks[kind][0](value):
        return f'"{key}" {checks[kind][1]}'
    return None


def _tags_problem(key: str, value: object) -> str | None:
    if not isinstance(value, list):
        return f'"{key}" must be an array'
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            return f'"{key}[{index}]" must be a string'
    return None


def _identity(record: Mapping[str, object], key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def validate_record(record: object) -> str | None:
    """The first problem with one user property, as a Joi-style message, or None when valid."""
    if not isinstance(record, dict):
        return '"value" must be of type object'
    for key, kind in SCHEMA.items():
        if key not in record:
            if kind == "name":
                return f'"{key}" is required'
            continue
        problem = _field_problem(key, kind, record[key])
        if problem:
            return problem
    for key in record:
        if key not in SCHEMA:
            return f'"{key}" is not allowed'
    if not any(_identity(record, key) for key in IDENTITY_KEYS):
        return NO_IDENTITY_MESSAGE
    return None


def parse_payload(body: bytes) -> list[object] | str:
    """The ``userProperties`` list of an upsert body, or the 400 message for a body that is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return '"value" must be valid JSON'
    if not isinstance(payload, dict):
        return '"value" must be of type object'
    if "userProperties" not in payload:
        return '"userProperties" is required'
    records = payload["userProperties"]
    if not isinstance(records, list):
        return '"userProperties" must be an array'
    for key in payload:
        # Job metadata has no business reaching BIK; a strict Joi schema refuses it.
        if key != "userProperties":
            return f'"{key}" is not allowed'
    return records


def find_value(records: list[object], wanted: str) -> str | None:
    """The Joi-style path of the first field holding ``wanted`` (not the value itself), or None."""
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            if value == wanted or (isinstance(value, list) and wanted in value):
                return f"userProperties[{index}].{key}"
    return None


# --- state ------------------------------------------------------------------------------------


def _fresh_counters() -> dict[str, int]:
    return dict.fromkeys(
        (
            "requests",
            "upsert_requests",
            "upsert_peak_in_flight",
            "records_received",
            "created",
            "updated",
            "invalid",
        ),
        0,
    )


class _Backend:
    """Users, counters, faults and token, shared by every handler thread under one lock."""

    def __init__(self, token: str, faults: Faults, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._initial_token = token
        self._seed = seed
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._token = token
        self._faults = dataclasses.replace(faults)
        self._rng = random.Random(seed)
        self._users: list[dict[str, Any]] = []
        self._index: dict[tuple[str, str], int] = {}
        self._counters = _fresh_counters()
        self._served = dict.fromkeys(FAULT_NAMES, 0)
        self._in_flight = 0

    # connections, so stop() can release keep-alive and hung ones at once
    def track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    @property
    def token(self) -> str:
        with self._lock:
            return self._token

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        with self._lock:
            token = self._token
        return scheme.lower() == "basic" and hmac.compare_digest(credentials.strip().encode(), token.encode())

    def faults(self) -> Faults:
        with self._lock:
            return dataclasses.replace(self._faults)

    def set_faults(self, knobs: Mapping[str, object]) -> None:
        with self._lock:
            faults, new_token = apply_knobs(self._faults, knobs)
            self._faults = faults
            if new_token is not None:
                self._token = new_token
        logger.info("emulator faults set", extra={"knobs": sorted(knobs), "token_rotated": bool(new_token)})

    def rotate_token(self, new_token: str) -> None:
        self.set_faults({"rotate_token": new_token})

    def reset(self) -> None:
        with self._lock:
            self._token = self._initial_token
            self._faults = Faults()
            self._rng = random.Random(self._seed)
            self._users = []
            self._index = {}
            self._counters = _fresh_counters()
            self._served = dict.fromkeys(FAULT_NAMES, 0)

    def count(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counters[name] += 1

    @contextlib.contextmanager
    def upsert_in_flight(self) -> Iterator[None]:
        """Count an upsert request as under way, for ``upsert_peak_in_flight`` (the pressure on BIK)."""
        with self._lock:
            self._in_flight += 1
            self._counters["upsert_peak_in_flight"] = max(
                self._counters["upsert_peak_in_flight"], self._in_flight
            )
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def served(self, fault: str) -> None:
        with self._lock:
            self._served[fault] += 1

    def draw_fault(self) -> str | None:
        """One seeded draw per authorised upsert request; the bands of the rates do not overlap."""
        with self._lock:
            roll = self._rng.random()
            edge = 0.0
            for knob in _RATE_KNOBS:
                edge += cast(float, getattr(self._faults, knob))
                if roll < edge:
                    return _RATE_FAULT[knob]
        return None

    def upsert(self, records: list[object]) -> dict[str, Any]:
        invalid: list[dict[str, Any]] = []
        created = updated = 0
        with self._lock:
            # In order, so a duplicate within one batch is a create and then an update.
            for record in records:
                problem = validate_record(record)
                if problem is not None:
                    entry: dict[str, Any] = dict(record) if isinstance(record, dict) else {"value": record}
                    entry.update({"storeId": STORE_ID, "customerId": None, "error": problem})
                    invalid.append(entry)
                    continue
                if self._store(cast(dict[str, Any], record)):
                    created += 1
                else:
                    updated += 1
            self._counters["records_received"] += len(records)
            self._counters["created"] += created
            self._counters["updated"] += updated
            self._counters["invalid"] += len(invalid)
        return {
            "status": 200,
            "data": {
                "invalidUserProperties": invalid,
                "bulkUpsertUPResponse": {
                    "createCount": created,
                    "updateCount": updated,
                    "docsFailedToUpdate": [],
                },
            },
        }

    def _store(self, record: dict[str, Any]) -> bool:
        """Merge ``record`` into the user it identifies or add it; True when created. Lock held."""
        position: int | None = None
        for key in IDENTITY_KEYS:
            value = _identity(record, key)
            if value is not None and (key, value) in self._index:
                position = self._index[(key, value)]
                break
        created = position is None
        if position is None:
            position = len(self._users)
            self._users.append({})
        user = self._users[position]
        for key in IDENTITY_KEYS:
            old, new = _identity(user, key), _identity(record, key)
            if new is not None and new != old:
                if old is not None and self._index.get((key, old)) == position:
                    del self._index[(key, old)]
                self._index[(key, new)] = position
        user.update(json.loads(json.dumps(record)))  # a deep copy: callers keep their objects
        return created

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._users))  # type: ignore[no-any-return]

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "users": len(self._users),
                **self._counters,
                "faults_served": dict(self._served),
                "faults": dataclasses.asdict(self._faults),
            }


# --- HTTP -------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # dozens of clients may connect at once

    def __init__(self, address: tuple[str, int], backend: _Backend) -> None:
        self.backend = backend
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-reply by design (timeouts, resets); no tracebacks on the demo's stderr.
        logger.debug("emulator connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BIKEmulator/1.0"
    timeout = 300  # an idle keep-alive connection gives its thread back eventually
    # Headers and body go out in two writes; with Nagle on, the body waits ~40 ms for the client's
    # delayed ACK, which would swamp the latency knob and the benchmarks.
    disable_nagle_algorithm = True

    @property
    def backend(self) -> _Backend:
        return cast(_Server, self.server).backend

    def setup(self) -> None:
        super().setup()
        self.backend.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.backend.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the demo's output must stay clean

    # -- plumbing

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/413 for one that cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_json(400, {"status": 400, "message": '"Content-Length" must be a number'})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413, {"status": 413, "message": "Payload Too Large"})
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self._send_json(400, {"status": 400, "message": "bad chunked encoding"})
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                self._send_json(413, {"status": 413, "message": "Payload Too Large"})
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), headers=headers)

    def _send_error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._send_json(status, {"status": status, "message": message}, headers)

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    # -- verbs

    def do_GET(self) -> None:
        if self._read_body() is None:
            return
        path = self._path()
        if path == STATE_PATH:
            self._send_json(200, self.backend.state())
        elif path == USERS_PATH:
            self._send_json(200, self.backend.users())
        else:
            if not path.startswith("/__emulator/"):
                self.backend.count("requests")
            self._send_error(404, "Not Found")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = self._path()
        if path == UPSERT_PATH:
            with self.backend.upsert_in_flight():
                self._upsert(body)
        elif path == AUTH_PATH:
            self.backend.count("requests")
            if self._authorized():
                self._send_json(200, {"status": "200"})
        elif path == RESET_PATH:
            self.backend.reset()
            self._send_json(200, self.backend.state())
        elif path == FAULTS_PATH:
            self._set_faults(body)
        else:
            if not path.startswith("/__emulator/"):
                self.backend.count("requests")
            self._send_error(404, "Not Found")

    def _authorized(self) -> bool:
        if self.backend.authorized(self.headers.get("Authorization")):
            return True
        self.backend.served("unauthorized")
        self._send_error(401, "Unauthenticated")
        return False

    def _set_faults(self, body: bytes) -> None:
        try:
            knobs = json.loads(body or b"{}")
        except ValueError:
            self._send_error(400, '"value" must be valid JSON')
            return
        if not isinstance(knobs, dict):
            self._send_error(400, '"value" must be of type object')
            return
        try:
            self.backend.set_faults(knobs)
        except ValueError as exc:
            self._send_error(400, str(exc))
            return
        self._send_json(200, self.backend.state())

    def _upsert(self, body: bytes) -> None:
        backend = self.backend
        backend.count("requests", "upsert_requests")
        faults = backend.faults()
        if faults.latency_ms > 0:
            backend.stopping.wait(faults.latency_ms / 1000)
        if not self._authorized():
            return
        fault = backend.draw_fault()
        if fault == "reset":
            backend.served("reset")
            self._reset_connection()
            return
        if fault == "hang":
            backend.served("hang")
            self._hang()
            return
        if fault == "throttle":
            backend.served("throttle")
            self._send_error(429, "Too Many Requests", {"Retry-After": _retry_after(faults.retry_after_s)})
            return
        if fault == "error":
            backend.served("error")
            self._send_error(500, "Internal Server Error")
            return
        records = parse_payload(body)
        if isinstance(records, str):
            self._send_error(400, records)
            return
        if faults.poison_value is not None:
            where = find_value(records, faults.poison_value)
            if where is not None:
                backend.served("poison")
                self._send_error(400, f'"{where}" contains an invalid value')
                return
        if faults.fail_value is not None and find_value(records, faults.fail_value) is not None:
            backend.served("fail")
            self._send_error(500, "Internal Server Error")
            return
        result = backend.upsert(records)
        if fault == "malformed":
            backend.served("malformed")
            self._send_bytes(200, MALFORMED_BODY)
            return
        self._send_json(200, result)

    def _hang(self) -> None:
        """Hold the request without a reply until the client hangs up, the emulator stops or time runs out."""
        self.close_connection = True  # then hang up without a reply
        deadline = time.monotonic() + HANG_SECONDS
        stopping = self.backend.stopping
        while not stopping.wait(0.05) and time.monotonic() < deadline:
            # A client that gave up has closed its end: free this thread instead of sleeping on.
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return

    def _reset_connection(self) -> None:
        # SO_LINGER 0 makes close() send a RST instead of a FIN: the client sees "connection reset".
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The fd really closes once finish() drops the rfile/wfile references; nothing is written.
        self.connection.close()


def _retry_after(seconds: float) -> str:
    # Whole seconds as HTTP says; fractions kept so tests can use short waits.
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


# --- public API -------------------------------------------------------------------------------


class Emulator:
    """A running emulator; ``stop()`` (or leaving the ``with`` block) shuts it down."""

    def __init__(self, server: _Server, thread: threading.Thread, backend: _Backend) -> None:
        self._server = server
        self._thread = thread
        self._backend = backend
        self._stopped = False
        host, port = server.server_address[:2]
        self.host: str = str(host)
        self.port: int = int(port)
        self.base_url: str = f"http://{self.host}:{self.port}"
        self.url: str = self.base_url + UPSERT_PATH
        self.auth_url: str = self.base_url + AUTH_PATH

    @property
    def token(self) -> str:
        """The currently valid Basic token (changes on rotation)."""
        return self._backend.token

    def set_faults(self, **knobs: Any) -> None:
        """Change the given knobs (and ``rotate_token``); the others keep their values."""
        self._backend.set_faults(knobs)

    def rotate_token(self, new_token: str) -> None:
        self._backend.rotate_token(new_token)

    def reset(self) -> None:
        """Clear users, counters and faults; the token goes back to the one it started with."""
        self._backend.reset()

    def state(self) -> dict[str, Any]:
        return self._backend.state()

    def users(self) -> list[dict[str, Any]]:
        return self._backend.users()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._backend.stopping.set()  # releases hung requests and latency sleeps
        self._server.shutdown()
        self._server.server_close()
        self._backend.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_emulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = DEFAULT_TOKEN,
    faults: Faults | None = None,
    seed: int | None = None,
) -> Emulator:
    """Serve in a daemon thread; the socket is listening when this returns."""
    backend = _Backend(token, faults or Faults(), seed)
    server = _Server((host, port), backend)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="bik-emulator", daemon=True
    )
    thread.start()
    emulator = Emulator(server, thread, backend)
    logger.info("emulator started", extra={"base_url": emulator.base_url})
    return emulator


def _iter_knob_args(args: argparse.Namespace) -> Iterator[tuple[str, object]]:
    for name in sorted(_FAULT_FIELDS):
        value = getattr(args, name)
        if value is not None:
            yield name, value


def main(argv: list[str]) -> int:
    """``bik-sync emulator``: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="bik-sync emulator", description="Run the BIK API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the valid Basic token")
    parser.add_argument("--latency-ms", dest="latency_ms", type=int)
    parser.add_argument("--error-rate", dest="error_rate", type=float)
    parser.add_argument("--throttle-rate", dest="throttle_rate", type=float)
    parser.add_argument("--retry-after-s", dest="retry_after_s", type=float)
    parser.add_argument("--hang-rate", dest="hang_rate", type=float)
    parser.add_argument("--reset-rate", dest="reset_rate", type=float)
    parser.add_argument("--malformed-rate", dest="malformed_rate", type=float)
    parser.add_argument("--poison-value", dest="poison_value")
    parser.add_argument("--fail-value", dest="fail_value", help="answer 500 to any batch holding this value")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    try:
        faults, _ = apply_knobs(Faults(), dict(_iter_knob_args(args)))
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    emulator = start_emulator(host=args.host, port=args.port, token=args.token, faults=faults, seed=args.seed)
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


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
