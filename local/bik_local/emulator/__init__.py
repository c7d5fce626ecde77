"""BIK API emulator: a real HTTP server on loopback that keeps the contract in DESIGN.md.

``contract`` validates as the API does (Joi-style messages) and names the identities, ``store``
holds users, counters and the token, ``faults`` the fault knobs, ``server`` the HTTP side, and
``cli`` the ``bik-sync emulator`` command (``--help`` explains every knob).
"""

from bik_local.emulator.cli import main
from bik_local.emulator.contract import (
    AUTH_PATH,
    DEFAULT_TOKEN,
    FAULTS_PATH,
    RESET_PATH,
    STATE_PATH,
    UPSERT_PATH,
    USERS_PATH,
)
from bik_local.emulator.faults import KNOB_HELP, Faults
from bik_local.emulator.server import DEFAULT_PORT, Emulator, start_emulator

__all__ = [
    "AUTH_PATH",
    "DEFAULT_PORT",
    "DEFAULT_TOKEN",
    "FAULTS_PATH",
    "KNOB_HELP",
    "RESET_PATH",
    "STATE_PATH",
    "UPSERT_PATH",
    "USERS_PATH",
    "Emulator",
    "Faults",
    "main",
    "start_emulator",
]
