"""Settings, read from the environment once into frozen, typed objects.

Nothing else in the package reads ``os.environ``. Each setting is declared once, as a field with
its environment variable, its parser and (unless the function cannot run without it) its default:
:func:`env_table` reads that table back, and :meth:`Settings.from_env` fills a settings class from it.

Each function states what it needs in its type: :class:`IngestSettings` and :class:`WorkerSettings`
add the names that function cannot run without (fields with no default), on top of the tuning in
:class:`Settings` that both share. Handlers call :func:`get_settings` with their class; tests build
the classes directly, or through ``from_env`` with a dict.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from bik_sync.bik import check_api_url
from bik_sync.records import ReadOptions

DEFAULT_BIK_API_URL = (
    "https://bikapi.bikayi.app/integrations/bikPlatformFunctions-createOrUpdateUserProperties"
)
MAX_BATCH_BYTES = 200_000

Parser = Callable[[str, str], Any]  # (variable name, raw value) -> value; SettingsError when invalid


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and what it expects."""


def _text(name: str, raw: str) -> str:
    return raw


def _upper(name: str, raw: str) -> str:
    return raw.upper()


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw.strip()!r}") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw.strip()!r}") from None


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def env(name: str, parse: Parser = _text) -> dict[str, Any]:
    """A field's metadata: the environment variable it is read from and how."""
    return {"env": name, "parse": parse}


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One row of the settings table: an environment variable and the field it sets."""

    name: str
    field: str
    parse: Parser
    default: Any  # dataclasses.MISSING when required

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


# eq=False (identity, as no caller compares settings): __eq__ and __hash__ over every field, generated
# at import for each of the three classes, are a cost of every cold start for nothing.
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Settings:
    """The tuning both functions share; every default is written here and nowhere else."""

    bik_api_url: str = field(default=DEFAULT_BIK_API_URL, metadata=env("BIK_API_URL"))
    bik_allow_http: bool = field(default=False, metadata=env("BIK_ALLOW_HTTP", _bool))
    bik_batch_size: int = field(default=100, metadata=env("BIK_BATCH_SIZE", _int))
    bik_max_batch_bytes: int = field(default=MAX_BATCH_BYTES, metadata=env("BIK_MAX_BATCH_BYTES", _int))
    bik_max_in_flight: int = field(default=8, metadata=env("BIK_MAX_IN_FLIGHT", _int))
    bik_connect_timeout_s: float = field(default=3.05, metadata=env("BIK_CONNECT_TIMEOUT_S", _float))
    bik_read_timeout_s: float = field(default=30.0, metadata=env("BIK_READ_TIMEOUT_S", _float))
    bik_max_attempts: int = field(default=8, metadata=env("BIK_MAX_ATTEMPTS", _int))
    max_receive_count: int = field(default=5, metadata=env("BIK_MAX_RECEIVE_COUNT", _int))
    secret_max_age_s: int = field(default=300, metadata=env("BIK_SECRET_MAX_AGE_S", _int))
    default_phone_region: str = field(default="IN", metadata=env("DEFAULT_PHONE_REGION", _upper))
    phone_format: str = field(default="E164", metadata=env("PHONE_FORMAT", _upper))
    mapping_uri: str = field(default="", metadata=env("MAPPING_URI"))

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

    @property
    def read_options(self) -> ReadOptions:
        """The record core's options these settings give (a mapping is read separately, when set)."""
        return ReadOptions(default_region=self.default_phone_region, phone_format=self.phone_format)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """This class filled from the environment: an empty variable means its default."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        missing: list[str] = []
        for var in env_table(cls).values():
            raw = source.get(var.name, "")
            if raw.strip():
                values[var.field] = var.parse(var.name, raw)
            elif var.required:
                missing.append(var.name)
        if missing:
            raise SettingsError(f"missing required environment variable(s): {', '.join(missing)}")
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class IngestSettings(Settings):
    """What IngestFunction cannot run without, and the shared tuning."""

    work_queue_url: str = field(metadata=env("WORK_QUEUE_URL"))
    jobs_table_name: str = field(metadata=env("JOBS_TABLE_NAME"))
    # The key ingest signs each work message's job metadata with (bik_sync.signing).
    job_signing_secret_id: str = field(metadata=env("JOB_SIGNING_SECRET_ID"))
    # Where ingest asks for a fresh invocation of itself when a file outlasts one (bik_sync.checkpoint);
    # without it, a file too large for one invocation stops with an 'incomplete' report.
    ingest_continue_queue_url: str = field(default="", metadata=env("INGEST_CONTINUE_QUEUE_URL"))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class WorkerSettings(Settings):
    """What UpsertFunction cannot run without, and the shared tuning."""

    jobs_table_name: str = field(metadata=env("JOBS_TABLE_NAME"))
    bik_secret_id: str = field(metadata=env("BIK_SECRET_ID"))
    # The bucket files arrive in; outputs of messages that came with no file go there too.
    data_bucket: str = field(metadata=env("DATA_BUCKET_NAME"))
    # The key that proves a message's job metadata comes from ingest (bik_sync.signing).
    job_signing_secret_id: str = field(metadata=env("JOB_SIGNING_SECRET_ID"))
    # The store's application id, sent as ``appId`` in every body when set (BIK's older docs list it).
    bik_app_id: str = field(default="", metadata=env("BIK_APP_ID"))


def env_table(kind: type[Settings]) -> dict[str, EnvVar]:
    """The settings table of one class: environment variable name -> field, parser, default."""
    table: dict[str, EnvVar] = {}
    for item in dataclasses.fields(kind):
        name = item.metadata["env"]
        table[name] = EnvVar(name=name, field=item.name, parse=item.metadata["parse"], default=item.default)
    return table


# Every variable any function reads (a variable means the same field in every class that has it).
SETTINGS_CLASSES: tuple[type[Settings], ...] = (Settings, IngestSettings, WorkerSettings)
ENVIRONMENT: dict[str, EnvVar] = {}
for _kind in SETTINGS_CLASSES:
    for _name, _var in env_table(_kind).items():
        if ENVIRONMENT.setdefault(_name, _var).field != _var.field:
            raise TypeError(f"{_name} sets two different fields")

_S = TypeVar("_S", bound=Settings)


_LOADED: dict[type[Settings], Settings] = {}


def get_settings(kind: type[_S]) -> _S:
    """The process's settings of one class, read once (a Lambda execution environment keeps them warm)."""
    settings = _LOADED.get(kind)
    if settings is None:
        settings = _LOADED[kind] = kind.from_env()
    assert isinstance(settings, kind)
    return settings
