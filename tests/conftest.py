"""Shared fixtures: the sample Lambda events in events/, as AWS sends them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture
def lambda_event() -> Any:
    def load(name: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((EVENTS / name).read_text())
        return document

    return load
