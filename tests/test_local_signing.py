"""With no WEBHOOK_SECRETS the local engine signs with a key derived from SECRET_KEY; that key
is accepted for local-engine payloads only, never for a cloud result."""

from __future__ import annotations

import json

import pytest

from tapestry_media.backends.local_delivery import derived_secret
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.signatures import sign_ittybit
from tapestry_media.status import Status

URL = "/tapestry/webhooks/ittybit/"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_configured_secrets(settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": []}


def post(client, payload: dict, secret: str):
    body = json.dumps(payload).encode()
    return client.post(
        URL,
        body,
        content_type="application/json",
        headers={"Ittybit-Signature": sign_ittybit(body, secret)},
    )


def make_task(remote_id: str) -> Task:
    return Task.objects.create(
        kind="video", input="in.mp4", backend="local", status=Status.PENDING, remote_id=remote_id
    )


def test_derived_key_is_accepted_for_a_local_payload(client) -> None:
    task = make_task("task_local_abc")
    response = post(client, {"id": "task_local_abc", "status": "succeeded"}, derived_secret())
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED


def test_derived_key_is_refused_for_a_cloud_payload(client) -> None:
    task = make_task("task_abc123")
    response = post(client, {"id": "task_abc123", "status": "succeeded"}, derived_secret())
    assert response.status_code == 401
    task.refresh_from_db()
    assert task.status == Status.PENDING
    assert WebhookEvent.objects.count() == 0


def test_derived_key_is_refused_inside_an_event_for_a_cloud_task(client) -> None:
    make_task("task_abc123")
    envelope = {
        "id": "evt_1",
        "object": "event",
        "kind": "task.succeeded",
        "data": {"id": "task_abc123", "status": "succeeded", "note": "task_local_decoy"},
    }
    assert post(client, envelope, derived_secret()).status_code == 401


def test_a_wrong_key_is_refused_for_a_local_payload(client) -> None:
    make_task("task_local_abc")
    response = post(client, {"id": "task_local_abc", "status": "succeeded"}, "guess")
    assert response.status_code == 401
