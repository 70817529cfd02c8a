"""Plain helpers shared by the test modules. Fixtures live in tests/conftest.py; nothing is
imported from a conftest or from another test module."""

from __future__ import annotations

import socket
import threading
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import router
from django.dispatch import Signal
from django.test import TestCase
from rest_framework.test import APIClient

from tapestry_media import signals
from tapestry_media.models import Submission
from tapestry_media.testing.contract_server import (
    DEFAULT_API_KEY,
    DEFAULT_WEBHOOK_SECRET,
    ContractServer,
)
from tapestry_media.testing.jobs import run_jobs


def make_user(name: str, *, email: str | None = None, superuser: bool = False, **extra: Any) -> Any:
    """A user of the settings' AUTH_USER_MODEL, ``auth.User`` or a host's own (tests/custom_user
    logs in by e-mail, has no ``username`` and UUID keys). ``name`` is the login; for a model
    logging in by e-mail the login is ``email``, or ``<name>@example.com``. Read the login back
    with ``get_username()``, never ``.username``."""
    model = get_user_model()
    manager: Any = model._default_manager
    create = manager.create_superuser if superuser else manager.create_user
    if model.USERNAME_FIELD == "email":
        return create(email or f"{name}@example.com", **extra)
    if email is not None:
        extra["email"] = email
    return create(name, **extra)


def integer_pks() -> bool:
    """Whether the user model's pks are integers (tests/custom_user's are UUIDs)."""
    return get_user_model()._meta.pk.get_internal_type().endswith("AutoField")


def video_upload(
    name: str = "clip.mp4", data: bytes = b"\x00\x00\x00\x18ftypmp42"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="video/mp4")


def upload(uploader: Any = None, **fields: Any) -> Submission:
    """A saved upload (campaign ``summer-launch``, source ``ios`` unless given); its tasks'
    submit jobs are queued when the transaction commits."""
    fields.setdefault("campaign", "summer-launch")
    fields.setdefault("source", "ios")
    fields.setdefault("file", video_upload())
    return Submission.objects.create(uploader=uploader, **fields)


def submitted_upload(uploader: Any = None, **fields: Any) -> Submission:
    """An upload whose two tasks (video, poster) were submitted: both ``pending`` on the dummy
    backend; on the contract server, whatever its faults made of them."""
    with TestCase.captureOnCommitCallbacks(using=app_alias(), execute=True):
        submission = upload(uploader, **fields)
    with TestCase.captureOnCommitCallbacks(using=app_alias(), execute=True):
        run_jobs()
    return submission


def app_alias() -> str:
    """The alias the database router gives this app's models (``default`` without a router):
    where its transactions, row locks and ``on_commit`` callbacks are."""
    return router.db_for_write(Submission)


def grant(user: Any, *codenames: str) -> None:
    """Give ``user`` these ``tapestry_media`` permissions."""
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="tapestry_media", codename__in=codenames)
    )
    assert user.user_permissions.count() == len(codenames)


def local_engine_settings(
    current: dict[str, Any], *, width: int, poster_at: float
) -> dict[str, Any]:
    """``TAPESTRY_MEDIA`` for the local engine with a small pipeline (a ``width`` px mp4 and a
    poster taken at ``poster_at`` s), so real ffmpeg runs take well under a second."""
    return {
        **current,
        "BACKEND": "local",
        "PIPELINE": {
            "video": [
                {"name": "video", "kind": "video", "options": {"width": width, "format": "mp4"}},
                {
                    "name": "poster",
                    "kind": "image",
                    "options": {"format": "jpg", "start": poster_at},
                },
            ]
        },
    }


def cloud_settings(server: ContractServer, **extra: Any) -> dict[str, Any]:
    """``TAPESTRY_MEDIA`` for the real Ittybit backend against a ``ContractServer``."""
    return {
        "BACKEND": "ittybit",
        "API_KEY": DEFAULT_API_KEY,
        "API_BASE_URL": server.url,
        "WEBHOOK_SECRETS": [DEFAULT_WEBHOOK_SECRET],
        "WEBHOOK_URL": "https://tapestry-app.com/tapestry/webhooks/ittybit/",
        "PUBLIC_BASE_URL": "https://tapestry-app.com",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HOST_SIGNALS = {
    "task_submitted": signals.task_submitted,
    "task_updated": signals.task_updated,
    "task_succeeded": signals.task_succeeded,
    "task_failed": signals.task_failed,
    "submission_processed": signals.submission_processed,
}


class SignalLog:
    """Every host signal sent, as ``(name, sender, kwargs)``; thread-safe."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._receivers: list[tuple[Signal, Any]] = []

    def connect(self) -> None:
        for name, signal in HOST_SIGNALS.items():

            def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
                kwargs.pop("signal")
                with self._lock:
                    self.sent.append((_name, sender, kwargs))

            signal.connect(receiver, weak=False)
            self._receivers.append((signal, receiver))

    def disconnect(self) -> None:
        for signal, receiver in self._receivers:
            signal.disconnect(receiver)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.sent]

    def only(self, name: str) -> dict[str, Any]:
        found = [kwargs for n, _, kwargs in self.sent if n == name]
        assert len(found) == 1, (name, self.names())
        return found[0]

    def clear(self) -> None:
        self.sent.clear()

    def __enter__(self) -> SignalLog:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()


def client_for(user: Any) -> APIClient:
    """An API client signed in as ``user``."""
    client = APIClient()
    client.force_authenticate(user)
    return client
