"""The task-backend system checks: each problem named, each with a configuration that passes."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import modify_settings, override_settings

from tapestry_media.checks import check_settings

try:
    from django.tasks.backends.dummy import DummyBackend
except ImportError:  # Django 5.2: the backport
    from django_tasks.backends.dummy import DummyBackend  # type: ignore[no-redef]

HERE = __name__


class NoPriorityBackend(DummyBackend):
    supports_priority = False


class NoDeferBackend(DummyBackend):
    supports_defer = False


class ExplodingBackend(DummyBackend):
    """Instantiating it would be a connection: the checks must only read its class."""

    supports_priority = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a system check instantiated the task backend")


@contextmanager
def use(path: str, **extra: Any) -> Iterator[None]:
    # A context, not the ``settings`` fixture: the suite's job-cleaning fixture must find the
    # tests' own backend again when it tears down.
    with override_settings(TASKS={"default": {"BACKEND": path}}, **extra):
        yield


def ids() -> list[str]:
    return [m.id for m in check_settings()]


def messages() -> dict[str, str]:
    return {m.id: f"{m.msg} {m.hint or ''}" for m in check_settings()}


DUMMY = settings.TASKS["default"]["BACKEND"]
IMMEDIATE = DUMMY.replace("dummy.DummyBackend", "immediate.ImmediateBackend")


def test_the_tests_own_backend_passes() -> None:
    assert ids() == []  # positive control for every test below


def test_a_backend_that_cannot_be_imported_is_named() -> None:
    with use("django_tasks_db.DatabseBackend"):
        found = messages()
    assert list(found) == ["tapestry_media.E007"]
    assert "'django_tasks_db.DatabseBackend' cannot be imported" in found["tapestry_media.E007"]
    with use(""):
        assert "names no BACKEND" in messages()["tapestry_media.E007"]
    with override_settings(TASKS={"default": "django_tasks_db.DatabaseBackend"}):
        assert "names no BACKEND" in messages()["tapestry_media.E007"]  # not a dict


def test_manage_py_check_reports_it() -> None:
    # Django's own task check would crash on the bad path first; ours is what names it.
    with use("nowhere.Backend"), pytest.raises(SystemCheckError, match=r"'nowhere\.Backend'"):
        call_command("check", tags=["tapestry_media"])
    call_command("check", tags=["tapestry_media"])  # positive control


def test_a_backend_whose_app_is_not_installed() -> None:
    pytest.importorskip("django_tasks_db")
    with use("django_tasks_db.DatabaseBackend"):
        found = messages()
        with modify_settings(INSTALLED_APPS={"append": "django_tasks_db"}):
            assert ids() == []
    assert list(found) == ["tapestry_media.E008"]
    assert "add 'django_tasks_db' to INSTALLED_APPS" in found["tapestry_media.E008"]


@pytest.mark.parametrize("debug", [False, True])
def test_jobs_inside_the_request_outside_debug(debug: bool) -> None:
    with use(IMMEDIATE, DEBUG=debug):
        found = messages()
    assert list(found) == ([] if debug else ["tapestry_media.W003"])
    if not debug:
        assert "runs inside the request" in found["tapestry_media.W003"]


def test_unset_tasks_means_the_immediate_backend() -> None:
    with override_settings(DEBUG=False):
        del settings.TASKS
        assert ids() == ["tapestry_media.W003"]


def test_a_backend_without_priorities() -> None:
    with use(f"{HERE}.NoPriorityBackend"):
        found = messages()
    assert list(found) == ["tapestry_media.W004"]
    assert "`priority` metadata" in found["tapestry_media.W004"]
    assert "django_tasks_db.DatabaseBackend" in found["tapestry_media.W004"]  # the fix


def test_a_backend_that_cannot_defer() -> None:
    with use(f"{HERE}.NoDeferBackend"):
        found = messages()
    assert list(found) == ["tapestry_media.W005"]
    assert (
        "waits in 'created' until `manage.py tapestry_media resync`" in found["tapestry_media.W005"]
    )


def test_the_backend_is_read_never_instantiated() -> None:
    with use(f"{HERE}.ExplodingBackend"):
        assert ids() == ["tapestry_media.W004"]


def test_rq_says_what_only_the_broker_knows(monkeypatch) -> None:
    fake = types.ModuleType("django_tasks_rq")
    fake.RQBackend = type(  # type: ignore[attr-defined]
        "RQBackend", (DummyBackend,), {"supports_priority": False}
    )
    monkeypatch.setitem(sys.modules, "django_tasks_rq", fake)
    with use("django_tasks_rq.RQBackend"):
        found = messages()
    assert sorted(found) == ["tapestry_media.I001", "tapestry_media.W004"]
    assert "--job-class django_tasks_rq.Job" in found["tapestry_media.I001"]


def test_celery_is_told_apart_by_its_path_without_importing_it(monkeypatch) -> None:
    # None in sys.modules: any import of the package fails at once, installed or not.
    monkeypatch.setitem(sys.modules, "django_tasks_celery", None)
    with use("django_tasks_celery.CeleryBackend"):
        found = messages()
    assert sorted(found) == ["tapestry_media.E007", "tapestry_media.I002"]
    assert "x-max-priority" in found["tapestry_media.I002"]


def test_a_missing_alias_is_named() -> None:
    media = {**settings.TAPESTRY_MEDIA, "TASK_BACKEND": "media"}
    with override_settings(TAPESTRY_MEDIA=media):
        assert ids() == ["tapestry_media.E005"]
        with override_settings(TASKS={**settings.TASKS, "media": {"BACKEND": DUMMY}}):
            assert ids() == []


@pytest.mark.django_db
def test_the_checks_never_query_the_database(django_assert_num_queries) -> None:
    with use("django_tasks_db.DatabaseBackend"), django_assert_num_queries(0):
        assert check_settings()
