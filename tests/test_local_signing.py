"""With no WEBHOOK_SECRETS the local engine signs with a key derived from SECRET_KEY; that key
is scoped to the local backend: what it signs changes local tasks only, never a cloud task
(whatever ids the body names), and never takes an unscoped event's dedup slot."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.db import OperationalError

from tapestry_media.admin import reprocess
from tapestry_media.local.delivery import derived_secret
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.signatures import sign_ittybit
from tapestry_media.status import Status
from tapestry_media.webhooks import apply_unmatched

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


def make_cloud_task(remote_id: str | None = None) -> Task:
    return Task.objects.create(
        kind="video", input="in.mp4", backend="ittybit", status=Status.PENDING, remote_id=remote_id
    )


def test_derived_key_never_changes_a_cloud_task_named_by_remote_id(client) -> None:
    task = make_cloud_task("task_abc123")
    response = post(client, {"id": "task_abc123", "status": "succeeded"}, derived_secret())
    assert response.json()["status"] == "unmatched"
    task.refresh_from_db()
    assert task.status == Status.PENDING
    assert not WebhookEvent.objects.filter(task=task).exists()  # stored unmatched
    # Positive control: the same body, signed for a local task with that id, is applied.
    local = make_task("task_abc999")
    post(client, {"id": "task_abc999", "status": "succeeded"}, derived_secret())
    local.refresh_from_db()
    assert local.status == Status.SUCCEEDED


def test_derived_key_with_a_local_id_never_changes_a_cloud_task_by_correlation(client) -> None:
    cloud = make_cloud_task()  # not submitted yet: matched by its correlation key only
    body = {
        "id": "task_local_decoy",
        "status": "succeeded",
        "metadata": {"tapestry_task": str(cloud.uuid)},
    }
    response = post(client, body, derived_secret())
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "unmatched"
    cloud.refresh_from_db()
    assert (cloud.status, cloud.remote_id) == (Status.PENDING, None)
    assert not WebhookEvent.objects.filter(task=cloud).exists()
    # Positive control: a local task with that correlation key is applied.
    local = make_task("task_local_real")
    local.remote_id = None
    local.save()
    body["metadata"] = {"tapestry_task": str(local.uuid)}
    body["id"] = "task_local_other"
    post(client, body, derived_secret())
    local.refresh_from_db()
    assert local.status == Status.SUCCEEDED


def test_derived_key_event_never_takes_a_real_events_dedup_slot(client, settings) -> None:
    task = make_cloud_task("task_abc123")
    envelope = {
        "id": "evt_1",
        "object": "event",
        "kind": "task.succeeded",
        "data": {"id": "task_abc123", "status": "succeeded"},
    }
    assert post(client, envelope, derived_secret()).json()["status"] == "unmatched"
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": ["real"]}
    response = post(client, envelope, "real")
    assert response.json()["status"] == "applied"
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    keys = set(WebhookEvent.objects.values_list("dedup_key", flat=True))
    assert "event:evt_1" in keys
    assert any(k.startswith("scope:local|") for k in keys)


def test_a_scoped_unmatched_event_is_not_applied_to_a_cloud_task_later(client) -> None:
    post(client, {"id": "task_late", "status": "succeeded"}, derived_secret())
    cloud = make_cloud_task()
    cloud.remote_id = "task_late"
    cloud.save()
    assert apply_unmatched(cloud) == 0
    cloud.refresh_from_db()
    assert cloud.status == Status.PENDING
    # Positive control: for a local task with that id the stored event is applied.
    cloud.backend = "local"
    cloud.save()
    assert apply_unmatched(cloud) == 1


def test_derived_key_is_refused_once_webhook_secrets_are_set(client, settings) -> None:
    task = make_task("task_local_abc")
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": ["configured"]}
    response = post(client, {"id": "task_local_abc", "status": "succeeded"}, derived_secret())
    assert response.status_code == 401
    task.refresh_from_db()
    assert task.status == Status.PENDING
    assert (
        post(client, {"id": "task_local_abc", "status": "succeeded"}, "configured").json()["status"]
        == "applied"
    )


def test_a_wrong_key_is_refused_for_a_local_payload(client) -> None:
    make_task("task_local_abc")
    response = post(client, {"id": "task_local_abc", "status": "succeeded"}, "guess")
    assert response.status_code == 401


def test_a_repeat_of_a_failed_scoped_event_never_changes_a_cloud_task(client) -> None:
    """The retry path looks the task up again (reconcile.find_task): it keeps the scope."""
    cloud = make_cloud_task("task_abc123")
    local = make_task("task_local_abc")
    down = OperationalError("database down")
    for task in (cloud, local):
        body = {"id": "evt_" + task.remote_id, "object": "event", "kind": "task.succeeded"}
        body["data"] = {"id": task.remote_id, "status": "succeeded"}
        with mock.patch("tapestry_media.reconcile.find_task", side_effect=down):
            assert post(client, body, derived_secret()).status_code == 500
        post(client, body, derived_secret())  # the repeat: processed again
    cloud.refresh_from_db()
    local.refresh_from_db()
    assert cloud.status == Status.PENDING
    assert local.status == Status.SUCCEEDED  # positive control


def test_reprocessing_a_scoped_event_in_the_admin_keeps_its_scope(client) -> None:
    cloud = make_cloud_task()
    local = make_task("task_local_abc")
    for task in (cloud, local):
        body = {"id": f"task_local_{task.pk}", "status": "succeeded"}
        body["metadata"] = {"tapestry_task": str(task.uuid)}
        post(client, body, derived_secret())
        # Back to before the delivery, then the admin's "process again".
        Task.objects.filter(pk=task.pk).update(status=Status.PENDING, remote_id=None)
        reprocess(WebhookEvent.objects.latest("pk").pk)
    cloud.refresh_from_db()
    local.refresh_from_db()
    assert cloud.status == Status.PENDING
    assert local.status == Status.SUCCEEDED  # positive control
