"""Shared fixtures: the functions' Powertools environment, and the sample Lambda events in events/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# What template.yaml gives the functions, and Powertools reads (bik_sync.observability): set before
# any test module imports bik_sync, so that metrics have their namespace and logs their service.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bik-sync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "BikSync")

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture
def lambda_event() -> Any:
    def load(name: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((EVENTS / name).read_text())
        return document

    return load
