from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from django.test import TestCase

from tapestry_media import backends
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.testing.contract_server import ContractServer
from tapestry_media.testing.jobs import clear_jobs
from tapestry_media.testing.webhooks import closing_deliverer

from .helpers import SignalLog, app_alias, cloud_settings

CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With CI=true a skipped test (a missing database, browser or ffmpeg) is a failure."""
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"


@pytest.fixture(autouse=True)
def _clean_backends(settings) -> Iterator[None]:
    DummyBackend.clear()
    backends.reset()
    yield
    DummyBackend.clear()
    backends.reset()


@pytest.fixture(autouse=True)
def _clean_jobs() -> Iterator[None]:
    clear_jobs()
    yield
    clear_jobs()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def no_network(monkeypatch) -> None:
    """Fail any attempt to open a socket to anything but a local database."""
    from django.conf import settings

    real_connect = socket.socket.connect
    db = settings.DATABASES["default"]
    database_port = int(db.get("PORT") or 5432)

    def guarded(sock: socket.socket, address: object) -> object:
        is_database = isinstance(address, tuple) and address[1] == database_port
        if sock.family == socket.AF_UNIX or is_database:
            return real_connect(sock, address)
        raise AssertionError(f"network call to {address!r} during a request/save")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: guarded(socket.socket(), a[0]))


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    """An empty cache around the test: the API's throttles count requests there."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def django_capture_on_commit_callbacks() -> Any:
    """pytest-django's, capturing on the alias the database router gives this app's models
    (where its callbacks are registered) unless told another."""
    return partial(TestCase.captureOnCommitCallbacks, using=app_alias())


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    """Every host signal sent during the test."""
    with SignalLog() as log:
        yield log


@pytest.fixture
def contract_server_options() -> dict[str, Any]:
    """Keyword arguments for ``contract_server``. A module overrides this fixture to change
    them (a webhook deliverer, the envelope, the signature scheme)."""
    return {}


@pytest.fixture
def contract_server(contract_server_options: dict[str, Any]) -> Iterator[ContractServer]:
    """The Ittybit task API in process, on 127.0.0.1. A request it could not handle fails
    the test."""
    with ContractServer(**contract_server_options) as running:
        yield running
    assert running.errors == []


@pytest.fixture
def cloud(contract_server: ContractServer, settings) -> ContractServer:
    """The app on the real Ittybit backend against ``contract_server``, which delivers its
    webhooks to this app's endpoint (through the test client, never over the network)."""
    if contract_server.deliver is None:
        contract_server.deliver = closing_deliverer()
    settings.TAPESTRY_MEDIA = cloud_settings(contract_server, HTTP_RETRIES=0)
    return contract_server


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob")


def pytest_report_header(config: pytest.Config) -> str:
    import django
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"tapestry_media: Django {django.get_version()}, database {engine}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what these settings cannot run: a skip would fail the leg under CI=true.
    ``server_db`` tests (row locks, concurrent connections) have nothing to say on SQLite;
    ``routed`` tests need a database router (tests.settings_router); ``vendors`` tests name
    the databases where what they check exists."""
    from django.conf import settings
    from django.db import connection

    _deselect_the_queue_leg(config, items)

    unfit = set()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        unfit.add("server_db")
    if not settings.DATABASE_ROUTERS:
        unfit.add("routed")
    else:
        _open_every_alias(items)
    vendor = connection.vendor
    deselected = [
        item
        for item in items
        if any(item.get_closest_marker(m) for m in unfit)
        or ((only := item.get_closest_marker("vendors")) and vendor not in only.args)
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def _open_every_alias(items: list[pytest.Item]) -> None:
    """Under a database router this app's models live on another alias than ``default``: a
    database test may use every alias (pytest-django's ``django_db`` allows ``default``
    only unless told otherwise)."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and "databases" not in marker.kwargs:
            opened = pytest.mark.django_db(*marker.args, **marker.kwargs, databases="__all__")
            item.add_marker(opened, append=False)


def _deselect_the_queue_leg(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``queues``-marked tests run only when asked for with ``-m queues`` (their own leg,
    scripts/test-queues.sh: Redis, RabbitMQ and the ``queues`` extra)."""
    if "queues" in (config.getoption("markexpr") or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("queues")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("queues")]
