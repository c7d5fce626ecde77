"""Unit tests open no socket: anything that reaches for the network fails the test at once.

The outside world is the in-memory fakes of tests/fakes.py; the integration tests have the real
servers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


class NetworkUsed(AssertionError):
    """A unit test tried to open a connection."""


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkUsed("unit tests open no socket: use the fakes in tests/fakes.py")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    yield
