"""The emulator's state: users (upserted by identity), counters, fault knobs, the token, connections.

``records_received`` counts records of batches that reached validation, so
``records_received == created + updated + invalid`` always holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import logging
import random
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any, cast

from bik_local.emulator.contract import IDENTITY_KEYS, STORE_ID, identity, validate_record
from bik_local.emulator.faults import FAULT_NAMES, Faults, apply_knobs, pick_fault

logger = logging.getLogger(__name__)

_COUNTERS = (
    "requests",
    "upsert_requests",
    "upsert_peak_in_flight",
    "records_received",
    "created",
    "updated",
    "invalid",
)


class Backend:
    """Users, counters, faults and token, shared by every handler thread under one lock."""

    def __init__(self, token: str, faults: Faults, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._initial_token = token
        self._seed = seed
        self.app_id: str | None = None  # required in every body when set (configuration, kept by reset)
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._token = token
        self._faults = dataclasses.replace(faults)
        self._rng = random.Random(seed)
        self._users: list[dict[str, Any]] = []
        self._index: dict[tuple[str, str], int] = {}
        self._counters = dict.fromkeys(_COUNTERS, 0)
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
            self._counters = dict.fromkeys(_COUNTERS, 0)
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
        """One seeded draw per authorised upsert request."""
        with self._lock:
            return pick_fault(self._faults, self._rng.random())

    def upsert(self, records: list[object]) -> dict[str, Any]:
        """Apply one batch as BIK does and return its 200 body: invalid records echoed, the rest stored."""
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
        ids = [(key, value) for key in IDENTITY_KEYS if (value := identity(record, key)) is not None]
        position: int | None = None
        for pair in ids:
            position = self._index.get(pair)
            if position is not None:
                break
        created = position is None
        if position is None:
            position = len(self._users)
            self._users.append({})
        user = self._users[position]
        for key, new in ids:
            old = identity(user, key)
            if new != old:
                if old is not None and self._index.get((key, old)) == position:
                    del self._index[(key, old)]
                self._index[(key, new)] = position
        # A deep copy (callers keep their objects): a valid record holds text, booleans and lists of text.
        user.update({key: list(value) if isinstance(value, list) else value for key, value in record.items()})
        return created

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {k: list(v) if isinstance(v, list) else v for k, v in user.items()} for user in self._users
            ]

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "users": len(self._users),
                **self._counters,
                "faults_served": dict(self._served),
                "faults": dataclasses.asdict(self._faults),
            }
