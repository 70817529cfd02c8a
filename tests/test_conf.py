"""Settings are read through one typed object; bad ones are system-check errors naming them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from tapestry_media.checks import check_settings
from tapestry_media.conf import Settings, get_settings, validate


def check_ids(settings) -> list[str]:
    return [m.id for m in check_settings()]


def test_defaults_are_documented_values() -> None:
    config = Settings()
    assert config.TASKS_PATH == "/tasks"
    assert config.PIPELINE["video"][0] == {
        "name": "video",
        "kind": "video",
        "options": {"width": 1280, "height": 1280, "fit": "contain", "format": "mp4"},
    }
    assert config.PIPELINE["video"][1]["options"] == {
        "width": 1280,
        "height": 1280,
        "fit": "contain",
        "format": "jpg",
        "start": 1,
    }
    assert timedelta(minutes=15) == config.STALE_AFTER


def test_override_settings_is_seen_at_once(settings) -> None:
    assert get_settings().BACKEND == "dummy"
    settings.TAPESTRY_MEDIA = {"BACKEND": "local", "API_VERSION": "2025-08-20"}
    assert get_settings().BACKEND == "local"
    assert get_settings().API_VERSION == "2025-08-20"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"BACKNED": "local"}, "['BACKNED'] is not a setting"),
        ({"BACKEND": "azure"}, "'BACKEND'] is 'azure'"),
        ({"WEBHOOK_SECRETS": "one-secret"}, "'WEBHOOK_SECRETS'] must be a list"),
        ({"API_BASE_URL": "api.ittybit.com"}, "'API_BASE_URL'] must be an absolute"),
        ({"TASKS_PATH": "tasks"}, "'TASKS_PATH'] must start with '/'"),
        ({"READ_TIMEOUT": 0}, "'READ_TIMEOUT'] must be a positive number"),
        ({"HTTP_RETRIES": -1}, "'HTTP_RETRIES'] must be a whole number"),
        ({"DEFAULT_METADATA": {"campaign": 5}}, "metadata['campaign'] must be a string"),
        ({"PIPELINE": {"film": []}}, "unknown media kind 'film'"),
        (
            {"PIPELINE": {"video": [{"name": "v", "kind": "video"}, {"name": "v", "kind": "x"}]}},
            "'v' is used twice",
        ),
        ({"PIPELINE": {"video": [{"name": "Bad Name", "kind": "video"}]}}, "short lowercase slug"),
        ({"CORRELATION_KEY": "has-dash"}, "'CORRELATION_KEY'] must be 1 to 32"),
    ],
)
def test_bad_settings_are_check_errors_naming_the_setting(settings, raw, fragment) -> None:
    assert any(fragment in p for p in validate(raw)), validate(raw)
    settings.TAPESTRY_MEDIA = raw
    messages = check_settings()
    assert [m.id for m in messages] == ["tapestry_media.E001"]
    assert fragment in messages[0].msg
    with pytest.raises(ImproperlyConfigured, match="TAPESTRY_MEDIA"):
        get_settings()


def test_cloud_backend_without_key_or_secret_names_both(settings) -> None:
    settings.TAPESTRY_MEDIA = {"BACKEND": "ittybit", "PUBLIC_BASE_URL": "https://x.test"}
    messages = {m.id: m.msg for m in check_settings()}
    assert "TAPESTRY_MEDIA['API_KEY']" in messages["tapestry_media.E003"]
    assert "TAPESTRY_MEDIA['WEBHOOK_SECRETS']" in messages["tapestry_media.W002"]
    settings.TAPESTRY_MEDIA = {
        "BACKEND": "ittybit",
        "API_KEY": "key",
        "WEBHOOK_SECRETS": ["s"],
        "PUBLIC_BASE_URL": "https://x.test",
    }
    assert check_settings() == []  # positive control: a complete cloud config passes


def test_auto_backend_is_local_without_a_key_and_ittybit_with_one(settings) -> None:
    settings.TAPESTRY_MEDIA = {"BACKEND": "auto"}
    assert get_settings().backend_name == "local"
    settings.TAPESTRY_MEDIA = {"BACKEND": "auto", "API_KEY": "k", "WEBHOOK_SECRETS": ["s"]}
    assert get_settings().backend_name == "ittybit"


def test_unimportable_backend_path(settings) -> None:
    settings.TAPESTRY_MEDIA = {"BACKEND": "myproject.nope.Backend"}
    assert check_ids(settings) == ["tapestry_media.E002"]


def test_task_backend_alias_must_exist(settings) -> None:
    settings.TAPESTRY_MEDIA = {"BACKEND": "dummy", "TASK_BACKEND": "media"}
    assert check_ids(settings) == ["tapestry_media.E005"]


@pytest.mark.django_db
def test_checks_never_query_the_database(settings, django_assert_num_queries) -> None:
    settings.TAPESTRY_MEDIA = {"BACKEND": "ittybit"}
    with django_assert_num_queries(0):
        assert check_settings()
