from __future__ import annotations

import pytest

from bik_sync.settings import DEFAULT_BIK_API_URL, IngestSettings, Settings, SettingsError


def test_defaults_need_nothing_but_the_function_specific_names() -> None:
    settings = Settings.from_env({})
    assert settings.bik_api_url == DEFAULT_BIK_API_URL
    assert settings.bik_batch_size == 100
    assert settings.default_phone_region == "IN"


def test_environment_values_are_typed() -> None:
    settings = Settings.from_env(
        {
            "BIK_BATCH_SIZE": "50",
            "BIK_ALLOW_HTTP": "yes",
            "BIK_API_URL": "http://127.0.0.1:9/x",
            "PHONE_FORMAT": "international",
            "BIK_READ_TIMEOUT_S": "2.5",
        }
    )
    assert (settings.bik_batch_size, settings.bik_allow_http, settings.phone_format) == (
        50,
        True,
        "INTERNATIONAL",
    )
    assert settings.bik_read_timeout_s == 2.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BIK_BATCH_SIZE": "ten"}, "BIK_BATCH_SIZE must be a whole number"),
        ({"BIK_BATCH_SIZE": "0"}, "between 1 and 1000"),
        ({"BIK_API_URL": "http://bik.example.com/x"}, "must use https"),
        ({"BIK_API_URL": "http://bik.example.com/x", "BIK_ALLOW_HTTP": "true"}, "loopback"),
        ({"BIK_ALLOW_HTTP": "maybe"}, "true or false"),
        ({"PHONE_FORMAT": "pretty"}, "phone_format must be one of"),
        ({"DEFAULT_PHONE_REGION": "India"}, "two-letter"),
        ({"DEFAULT_PHONE_REGION": "XY"}, "two-letter"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_a_functions_settings_list_every_missing_required_variable() -> None:
    with pytest.raises(SettingsError, match="WORK_QUEUE_URL, JOBS_TABLE_NAME"):
        IngestSettings.from_env({})
