"""Settings, read from the environment once into a frozen, typed object.

Nothing else in the package reads ``os.environ``: handlers call :func:`get_settings`, tests build
``Settings`` directly or through :meth:`Settings.from_env` with a dict.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from bik_sync.bik import check_api_url
from bik_sync.records import ReadOptions

DEFAULT_BIK_API_URL = (
    "https://bikapi.bikayi.app/integrations/bikPlatformFunctions-createOrUpdateUserProperties"
)
MAX_BATCH_BYTES = 200_000
_N = TypeVar("_N", int, float)

# Where things live in the bucket. Outputs go under other prefixes than incoming/, so writing
# them never re-triggers ingest.
INCOMING_PREFIX = "incoming/"
REJECTS_PREFIX = "rejects/"
REPORTS_PREFIX = "reports/"
FAILED_PREFIX = "failed/"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what it expects."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_bucket: str = ""
    work_queue_url: str = ""
    jobs_table_name: str = ""
    bik_secret_id: str = ""
    bik_api_url: str = DEFAULT_BIK_API_URL
    bik_allow_http: bool = False
    bik_batch_size: int = 100
    bik_max_batch_bytes: int = MAX_BATCH_BYTES
    bik_max_in_flight: int = 8
    bik_connect_timeout_s: float = 3.05
    bik_read_timeout_s: float = 30.0
    bik_max_attempts: int = 8
    max_receive_count: int = 5
    secret_max_age_s: int = 300
    default_phone_region: str = "IN"
    phone_format: str = "E164"
    mapping_uri: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.bik_batch_size <= 1000:
            raise SettingsError(f"BIK_BATCH_SIZE must be between 1 and 1000, got {self.bik_batch_size}")
        if not 1024 <= self.bik_max_batch_bytes <= MAX_BATCH_BYTES:
            # A batch is one work-queue message: with its job metadata it must fit SQS's 256 KiB.
            raise SettingsError(f"BIK_MAX_BATCH_BYTES must be between 1024 and {MAX_BATCH_BYTES}")
        if not 1 <= self.bik_max_in_flight <= 64:
            raise SettingsError("BIK_MAX_IN_FLIGHT must be between 1 and 64")
        if self.max_receive_count < 1:
            raise SettingsError("BIK_MAX_RECEIVE_COUNT must be at least 1")
        try:  # the record core's own rule, so the Lambda and `bik-sync validate` accept the same values
            ReadOptions(default_region=self.default_phone_region, phone_format=self.phone_format)
        except ValueError as exc:
            raise SettingsError(f"DEFAULT_PHONE_REGION / PHONE_FORMAT: {exc}") from None
        if self.bik_max_attempts < 1:
            raise SettingsError("BIK_MAX_ATTEMPTS must be at least 1")
        try:
            check_api_url(self.bik_api_url, allow_http=self.bik_allow_http)
        except ValueError as exc:
            raise SettingsError(
                f"BIK_API_URL: {exc} (set BIK_ALLOW_HTTP=true for a local emulator)"
            ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            data_bucket=env.get("DATA_BUCKET_NAME", ""),
            work_queue_url=env.get("WORK_QUEUE_URL", ""),
            jobs_table_name=env.get("JOBS_TABLE_NAME", ""),
            bik_secret_id=env.get("BIK_SECRET_ID", ""),
            bik_api_url=env.get("BIK_API_URL", "") or DEFAULT_BIK_API_URL,
            bik_allow_http=_bool(env, "BIK_ALLOW_HTTP", default=False),
            bik_batch_size=_int(env, "BIK_BATCH_SIZE", 100),
            bik_max_batch_bytes=_int(env, "BIK_MAX_BATCH_BYTES", MAX_BATCH_BYTES),
            bik_max_in_flight=_int(env, "BIK_MAX_IN_FLIGHT", 8),
            bik_connect_timeout_s=_float(env, "BIK_CONNECT_TIMEOUT_S", 3.05),
            bik_read_timeout_s=_float(env, "BIK_READ_TIMEOUT_S", 30.0),
            bik_max_attempts=_int(env, "BIK_MAX_ATTEMPTS", 8),
            max_receive_count=_int(env, "BIK_MAX_RECEIVE_COUNT", 5),
            secret_max_age_s=_int(env, "BIK_SECRET_MAX_AGE_S", 300),
            default_phone_region=env.get("DEFAULT_PHONE_REGION", "IN").upper(),
            phone_format=env.get("PHONE_FORMAT", "E164").upper(),
            mapping_uri=env.get("MAPPING_URI", ""),
        )

    def require(self, *names: str) -> None:
        """Fail with one clear message when a function's required settings are empty."""
        missing = [name.upper() for name in names if not getattr(self, name)]
        if missing:
            raise SettingsError(f"missing required environment variable(s): {', '.join(missing)}")


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once (a Lambda execution environment keeps them warm)."""
    return Settings.from_env()


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


def _number(env: Mapping[str, str], name: str, default: _N, kind: Callable[[str], _N], what: str) -> _N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")
