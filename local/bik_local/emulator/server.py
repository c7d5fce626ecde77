"""The emulator's HTTP side: a real server on loopback speaking the BIK API and the inspection API.

Integration tests, the demo and the benchmarks talk to it over HTTP exactly as the deployed code
talks to BIK: Basic auth, the bulk upsert with Joi-style per-record validation, create vs update
by identity (see ``contract`` and ``store``), plus the fault knobs of ``faults`` and an inspection
API under ``/__emulator/`` (state, users, reset, faults).
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, cast

from bik_local.emulator.contract import (
    AUTH_PATH,
    DEFAULT_TOKEN,
    FAULTS_PATH,
    RESET_PATH,
    STATE_PATH,
    UPSERT_PATH,
    USERS_PATH,
    app_id_problem,
    dumps,
    find_value,
    parse_json_object,
    parse_payload,
)
from bik_local.emulator.faults import HANG_SECONDS, MALFORMED_BODY, Faults, retry_after_header
from bik_local.emulator.store import Backend

DEFAULT_PORT: Final = 8765
MAX_BODY_BYTES: Final = 64 * 1024 * 1024

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # dozens of clients may connect at once

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
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
    def backend(self) -> Backend:
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
        self._send_bytes(status, dumps(payload), headers=headers)

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
                self._auth_partner(body)
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

    def _auth_partner(self, body: bytes) -> None:
        """authPartnerViaKey: good credentials (and the app id, when the emulator requires one)."""
        payload = parse_json_object(body or b"{}")
        problem = payload if isinstance(payload, str) else app_id_problem(payload, self.backend.app_id)
        if problem:
            self._send_error(400, problem)
            return
        self._send_json(200, {"status": "200"})

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
            retry_after = retry_after_header(faults.retry_after_s)
            self._send_error(429, "Too Many Requests", {"Retry-After": retry_after})
            return
        if fault == "error":
            backend.served("error")
            self._send_error(500, "Internal Server Error")
            return
        records = parse_payload(body, backend.app_id)
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


class Emulator:
    """A running emulator; ``stop()`` (or leaving the ``with`` block) shuts it down."""

    def __init__(self, server: _Server, thread: threading.Thread, backend: Backend) -> None:
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
    app_id: str | None = None,
) -> Emulator:
    """Serve in a daemon thread; the socket is listening when this returns.

    ``app_id``: every upsert and authPartnerViaKey body must carry this ``appId`` (None: optional).
    """
    backend = Backend(token, faults or Faults(), seed)
    backend.app_id = app_id
    server = _Server((host, port), backend)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="bik-emulator", daemon=True
    )
    thread.start()
    emulator = Emulator(server, thread, backend)
    logger.info("emulator started", extra={"base_url": emulator.base_url})
    return emulator
