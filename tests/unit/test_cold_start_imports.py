"""A cold start imports what it needs: each handler module, imported as on Lambda in a fresh process,
leaves the heavy modules it has no use for unimported, and still has the Tracer on.

How long the imports take is the cold_start benchmark's measure (`make bench`), not a test's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bik_local.bench.cold_start import lambda_environment

# Imported only when they are used, if at all, by either function.
NOT_AT_IMPORT = (
    "aws_lambda_powertools.utilities.batch",  # the worker builds its partial batch response itself
    "aws_lambda_powertools.utilities.data_classes",  # every event class, which the batch utility imports
    "aws_xray_sdk.ext.requests",  # the X-Ray SDK patches the AWS SDK, not every library it knows
    "aws_xray_sdk.ext.httpx",
    "asyncio",  # neither function is async; wrapt 2, under the X-Ray SDK, would import it (requirements.txt)
    "openpyxl",  # workbooks only
    "pycountry",  # the first country looked up
    "tqdm",  # the laptop commands' progress bars
)
# Per function: (modules it must not import, libraries its traces must cover).
FUNCTIONS = {
    # Ingest never calls BIK (the client, its answers and the credential check are the worker's),
    # and pass 1's index is no SQLite file.
    "bik_sync.handlers.ingest": (
        (
            "sqlite3",
            "aws_xray_sdk.ext.sqlite3",
            "bik_sync.bik.client",
            "bik_sync.bik.responses",
            "bik_sync.bik.auth_check",
        ),
        ("botocore",),
    ),
    # The credential check is the laptop commands' (bik-sync check); the worker reads no file.
    "bik_sync.handlers.upsert": (
        ("sqlite3", "aws_xray_sdk.ext.sqlite3", "bik_sync.bik.auth_check", "bik_sync.records.formats"),
        ("botocore",),
    ),
}

_PROBE = """
import json, sys
import {module}
loaded = [name for name in {unwanted!r} if name in sys.modules]
import botocore.client, sqlite3
from bik_sync.observability import tracer
patched = {{
    "botocore": hasattr(botocore.client.BaseClient.__dict__["_make_api_call"], "__wrapped__"),
    "sqlite3": hasattr(sqlite3.connect, "__wrapped__"),
}}
print(json.dumps({{"loaded": loaded, "tracing": not tracer.disabled, "patched": patched}}))
"""


@pytest.mark.parametrize("module", sorted(FUNCTIONS))
def test_a_handler_imports_no_module_its_cold_start_does_not_need_and_traces_on_lambda(module: str) -> None:
    # Given Lambda's environment (the Tracer on, as POWERTOOLS_TRACE_DISABLED is unset there)
    env = lambda_environment()  # and the package's src on PYTHONPATH
    unwanted, traced = FUNCTIONS[module]
    probe = _PROBE.format(module=module, unwanted=[*NOT_AT_IMPORT, *unwanted])
    # When the handler module alone is imported in a fresh process (then botocore and sqlite3, to look)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # Then none of the heavy modules it has no use for was imported
    assert found["loaded"] == []
    # And the Tracer is on, with the AWS SDK patched, and nothing else of ours
    assert found["tracing"] is True
    assert found["patched"] == {name: name in traced for name in ("botocore", "sqlite3")}
