"""``settings_from_env``: TAPESTRY_MEDIA from environment variables, strict, secrets hidden."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from tapestry_media.conf import Settings, load, validate
from tapestry_media.env import settings_from_env

API_KEY = "itty_sk_live_do-not-show-7f3a"
SECRET = "whsec_dGVzdHMtb25seS1zZWNyZXQ="


def env_of(variables: dict[str, str]) -> environ.Env:
    """django-environ's FileAwareEnv over a dict instead of os.environ."""
    env = environ.FileAwareEnv()
    env.ENVIRON = environ.FileAwareMapping(env=variables)
    return env


def test_every_kind_of_value_is_parsed() -> None:
    values = settings_from_env(
        env_of(
            {
                "TAPESTRY_MEDIA_BACKEND": "ittybit",
                "TAPESTRY_MEDIA_API_KEY": API_KEY,
                "TAPESTRY_MEDIA_WEBHOOK_SECRETS": f"{SECRET}, old-plain-secret ,",
                "TAPESTRY_MEDIA_PUBLIC_BASE_URL": "https://tapestry-app.com",
                "TAPESTRY_MEDIA_READ_TIMEOUT": "12.5",
                "TAPESTRY_MEDIA_HTTP_RETRIES": "4",
                "TAPESTRY_MEDIA_LOCAL_ALLOW_PRIVATE_ADDRESSES": "Yes",
                "TAPESTRY_MEDIA_STALE_AFTER": "10m",
                "TAPESTRY_MEDIA_DEFAULT_METADATA": '{"source": "web"}',
                "OTHER_VARIABLE": "ignored",
            }
        )
    )
    assert dict(values) == {
        "BACKEND": "ittybit",
        "API_KEY": API_KEY,
        "WEBHOOK_SECRETS": [SECRET, "old-plain-secret"],
        "PUBLIC_BASE_URL": "https://tapestry-app.com",
        "READ_TIMEOUT": 12.5,
        "HTTP_RETRIES": 4,
        "LOCAL_ALLOW_PRIVATE_ADDRESSES": True,
        "STALE_AFTER": timedelta(minutes=10),
        "DEFAULT_METADATA": {"source": "web"},
    }
    assert validate(values) == []
    config = load(values)
    assert config.WEBHOOK_SECRETS == (SECRET, "old-plain-secret")
    assert config.backend_name == "ittybit"


def test_no_variables_give_the_defaults_and_code_defaults_yield_to_variables() -> None:
    assert settings_from_env(env_of({})) == {}
    assert load(settings_from_env(env_of({}))) == Settings()
    values = settings_from_env(
        env_of({"TAPESTRY_MEDIA_BACKEND": "local", "TAPESTRY_MEDIA_API_KEY": "  "}),
        BACKEND="dummy",
        QUEUE_NAME="media",
    )
    assert dict(values) == {"BACKEND": "local", "QUEUE_NAME": "media"}  # blank = unset


def test_another_prefix() -> None:
    values = settings_from_env(env_of({"MEDIA_BACKEND": "local"}), prefix="MEDIA_")
    assert dict(values) == {"BACKEND": "local"}


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("TAPESTRY_MEDIA_HTTP_RETRIES", "two", "expected a whole number"),
        ("TAPESTRY_MEDIA_READ_TIMEOUT", "5s", "expected a number"),
        ("TAPESTRY_MEDIA_LOCAL_ALLOW_PRIVATE_ADDRESSES", "maybe", "expected true or false"),
        ("TAPESTRY_MEDIA_STALE_AFTER", "soon", "30s, 10m, 2h, 1d"),
        ("TAPESTRY_MEDIA_PIPELINE", "{video: []}", "expected a JSON object"),
        ("TAPESTRY_MEDIA_DEFAULT_METADATA", '["a"]', "not a JSON list"),
    ],
)
def test_a_malformed_value_names_the_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        settings_from_env(env_of({variable: value, "TAPESTRY_MEDIA_API_KEY": API_KEY}))
    message = str(caught.value)
    assert f"{variable}={value!r}" in message
    assert reason in message
    assert API_KEY not in message


def test_a_misspelt_variable_is_refused_without_showing_values() -> None:
    with pytest.raises(ImproperlyConfigured, match="TAPESTRY_MEDIA_API_KEYS names no") as caught:
        settings_from_env(env_of({"TAPESTRY_MEDIA_API_KEYS": API_KEY}))
    assert API_KEY not in str(caught.value)
    assert "TAPESTRY_MEDIA_API_KEY," in str(caught.value)  # the list of known names


def test_secrets_never_appear_in_reprs() -> None:
    values = settings_from_env(
        env_of({"TAPESTRY_MEDIA_API_KEY": API_KEY, "TAPESTRY_MEDIA_WEBHOOK_SECRETS": SECRET})
    )
    assert values["API_KEY"] == API_KEY  # positive control: the value is there
    for shown in (repr(values), str(values), f"{values}", repr({"TAPESTRY_MEDIA": values})):
        assert API_KEY not in shown
        assert SECRET not in shown
        assert "'API_KEY': ***" in shown
    assert API_KEY not in repr(load(values))


def test_secrets_from_files(tmp_path: Path) -> None:
    key_file = tmp_path / "ittybit_api_key"
    key_file.write_text(API_KEY + "\n")
    values = settings_from_env(env_of({"TAPESTRY_MEDIA_API_KEY_FILE": str(key_file)}))
    assert dict(values) == {"API_KEY": API_KEY}
    missing = str(tmp_path / "absent")
    with pytest.raises(ImproperlyConfigured, match="TAPESTRY_MEDIA_API_KEY_FILE names a file"):
        settings_from_env(env_of({"TAPESTRY_MEDIA_API_KEY_FILE": missing}))


def test_reads_os_environ_by_default(monkeypatch) -> None:
    monkeypatch.setenv("TAPESTRY_MEDIA_QUEUE_NAME", "media")
    assert settings_from_env()["QUEUE_NAME"] == "media"
