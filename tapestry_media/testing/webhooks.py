"""Test helpers for host projects: signed webhooks for a Task, posted through the test client,
and a switch to the dummy backend.

    from tapestry_media.testing.webhooks import dummy_backend, post_webhook

    def test_poster_ready(client, task):
        response = post_webhook(client, task, "succeeded")
        assert response.status_code == 200

The webhook is signed with a secret from ``TAPESTRY_MEDIA["WEBHOOK_SECRETS"]``, so it goes
through exactly the checks a real delivery does. Host signals are sent after commit: inside a
test transaction ``post_webhook`` runs those callbacks (``execute_on_commit=True``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client, override_settings
from django.urls import reverse

from ..backends import reset as reset_backends
from ..backends.dummy import DummyBackend
from ..conf import SETTING_NAME, get_settings
from ..models import Task
from ..signatures import STANDARD_SECRET_PREFIX, sign_ittybit, standard_headers
from .contract_server import client_deliverer

logger = logging.getLogger("tapestry_media.testing")

Shape = Literal["task", "event"]
SignatureScheme = Literal["ittybit", "standard"]

#: Topic of the event envelope for each raw status.
_TOPICS = {
    "succeeded": "task.succeeded",
    "completed": "task.succeeded",
    "ready": "task.succeeded",
    "failed": "task.failed",
    "error": "task.failed",
}


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook body and the headers that sign it."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.post(url, **kwargs)``."""
        return {"data": self.body, "content_type": "application/json", "headers": self.headers}


def remote_id_for(task: Task) -> str:
    """The task's remote id, or a stable made-up one when it has none yet."""
    return task.remote_id or f"task_test_{task.uuid.hex[:16]}"


def task_payload(
    task: Task,
    status: str = "succeeded",
    *,
    remote_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    output: Any = None,
    error: Any = None,
    progress: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The task object the API would send for ``task`` in raw ``status`` (any raw status, even
    an unknown one). Metadata defaults to the task's own, which carries the correlation key;
    pass ``metadata={}`` to leave it out. A success gets an output file, a failure an error,
    unless given."""
    rid = remote_id or remote_id_for(task)
    payload: dict[str, Any] = {
        "id": rid,
        "object": "task",
        "kind": task.kind,
        "status": status,
        "metadata": dict(task.metadata if metadata is None else metadata),
    }
    if progress is not None:
        payload["progress"] = progress
    if output is None and status in ("succeeded", "completed", "ready"):
        extension = {"image": "jpg", "audio": "mp3"}.get(task.kind, "mp4")
        output = {
            "url": f"https://cdn.example.com/{rid}.{extension}",
            "kind": task.kind,
            "format": extension,
        }
    if output is not None:
        payload["output"] = output
    if error is None and status in ("failed", "error"):
        error = {"kind": "processing_failed", "message": "the test says so"}
    if error is not None:
        payload["error"] = error
    payload.update(fields)
    return payload


def event_envelope(
    data: Mapping[str, Any], *, event_id: str | None = None, topic: str | None = None
) -> dict[str, Any]:
    """Wrap a task object in the late-2025 event envelope."""
    status = str(data.get("status", ""))
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "kind": topic or _TOPICS.get(status, "task.updated"),
        "created_at": int(time.time()),
        "data": dict(data),
    }


def sign(
    body: bytes,
    *,
    scheme: SignatureScheme = "ittybit",
    secret: str | None = None,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Signature headers for ``body``, with the first configured secret that fits ``scheme``."""
    key = secret or _configured_secret(scheme)
    if scheme == "ittybit":
        return {"Ittybit-Signature": sign_ittybit(body, key)}
    return standard_headers(
        body,
        key,
        msg_id=msg_id or f"msg_{uuid.uuid4().hex[:20]}",
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )


def build_webhook(
    task: Task,
    status: str = "succeeded",
    *,
    shape: Shape = "task",
    scheme: SignatureScheme = "ittybit",
    secret: str | None = None,
    event_id: str | None = None,
    timestamp: int | None = None,
    **fields: Any,
) -> SignedWebhook:
    """A signed webhook for ``task``: the bare task object (``shape="task"``, the seed's) or
    an event envelope (``shape="event"``); signed with ``Ittybit-Signature`` or the Standard
    Webhooks headers. ``fields`` go to :func:`task_payload`."""
    payload: dict[str, Any] = task_payload(task, status, **fields)
    if shape == "event":
        payload = event_envelope(payload, event_id=event_id)
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = sign(body, scheme=scheme, secret=secret, timestamp=timestamp)
    return SignedWebhook(body, headers)


def webhook_url() -> str:
    return reverse("tapestry_media:webhook")


def closing_deliverer() -> Callable[[str, bytes, dict[str, str]], int]:
    """A ``ContractServer(deliver=...)`` callable that posts webhooks to the real endpoint
    through the Django test client. A delivery made in a server thread closes that thread's
    database connections afterwards, or the test database could not be dropped."""
    deliver = client_deliverer(Client(), webhook_url())

    def deliver_and_close(url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            return deliver(url, body, headers)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connections.close_all()

    return deliver_and_close


def post_webhook(
    client: Any,
    task_or_webhook: Task | SignedWebhook,
    status: str = "succeeded",
    *,
    execute_on_commit: bool = True,
    using: str = DEFAULT_DB_ALIAS,
    **options: Any,
) -> Any:
    """POST a signed webhook through a Django test ``client`` and return the response.

    Pass a Task (with ``status`` and :func:`build_webhook` options) or a ready
    :class:`SignedWebhook`. With ``execute_on_commit`` the on-commit callbacks the request
    registered (the host signals) run before this returns, also inside a test transaction.
    """
    if isinstance(task_or_webhook, SignedWebhook):
        webhook = task_or_webhook
    else:
        webhook = build_webhook(task_or_webhook, status, **options)
    if not execute_on_commit:
        return client.post(webhook_url(), **webhook.client_kwargs())
    with run_on_commit_callbacks(using):
        return client.post(webhook_url(), **webhook.client_kwargs())


@contextmanager
def run_on_commit_callbacks(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the on-commit callbacks registered in the block when it ends, as a commit would,
    and forget them, so an enclosing ``captureOnCommitCallbacks(execute=True)`` does not run
    them a second time. In autocommit (transactional tests) callbacks already ran at once."""
    conn = connections[using]
    start = len(conn.run_on_commit)
    try:
        yield
    finally:
        while len(conn.run_on_commit) > start:
            batch = conn.run_on_commit[start:]
            del conn.run_on_commit[start:]
            for entry in batch:
                # (savepoint ids, callback, robust) since Django 4.2
                callback, robust = cast(Any, entry)[1], cast(Any, entry)[2]
                if not robust:
                    callback()
                    continue
                try:
                    callback()
                except Exception:
                    logger.exception("on_commit callback %r raised", callback)


@contextmanager
def dummy_backend(**settings: Any) -> Iterator[type[DummyBackend]]:
    """Use the dummy backend (no network; steer it through the yielded class) for the block.
    Other ``TAPESTRY_MEDIA`` settings are kept; ``settings`` override some. Works as a
    decorator too. As a pytest fixture::

        @pytest.fixture
        def media_backend():
            with dummy_backend() as backend:
                yield backend
    """
    current = dict(getattr(django_settings, SETTING_NAME, None) or {})
    DummyBackend.clear()
    try:
        with override_settings(**{SETTING_NAME: {**current, **settings, "BACKEND": "dummy"}}):
            reset_backends()
            yield DummyBackend
    finally:
        DummyBackend.clear()
        reset_backends()


def _configured_secret(scheme: SignatureScheme) -> str:
    secrets = get_settings().WEBHOOK_SECRETS
    if scheme == "standard":
        secrets = tuple(s for s in secrets if s.startswith(STANDARD_SECRET_PREFIX))
    if not secrets:
        wanted = f"{STANDARD_SECRET_PREFIX!r} secret" if scheme == "standard" else "secret"
        raise ValueError(
            f"{SETTING_NAME}['WEBHOOK_SECRETS'] holds no {wanted} to sign a test webhook with; "
            "pass secret=…"
        )
    return secrets[0]


__all__ = [
    "SignedWebhook",
    "build_webhook",
    "dummy_backend",
    "event_envelope",
    "post_webhook",
    "remote_id_for",
    "run_on_commit_callbacks",
    "sign",
    "task_payload",
    "webhook_url",
]
