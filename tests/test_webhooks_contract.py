"""Webhooks end to end with the real IttybitBackend and the contract server: a result during
the create call, duplicates and reordering from the sender, a dropped webhook and resync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from tapestry_media.models import Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.contract_server import (
    ContractServer,
    Fault,
)

from .helpers import submitted_upload

# The server delivers webhooks from its own thread: the rows must be committed to be seen.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=[("bare", "ittybit"), ("event", "standard")], ids=["bare", "event"])
def contract_server_options(request) -> dict[str, Any]:
    envelope, scheme = request.param
    return {"webhook_envelope": envelope, "webhook_scheme": scheme}


def by_remote_id(server: ContractServer, task: Task) -> dict[str, Any]:
    return server.task(task.remote_id or "")


def test_webhook_delivered_during_the_create_call(cloud) -> None:
    cloud.inject(Fault.webhook_during_create("succeeded", times=2))

    sub = submitted_upload()

    assert [d.status_code for d in cloud.deliveries] == [200, 200]
    for task in sub.tasks.all():
        assert task.status == Status.SUCCEEDED, task.name
        assert task.remote_id in cloud.task_ids
        assert task.output_url == by_remote_id(cloud, task)["output"]["url"]
        assert task.submitted_at is not None
    # each result was matched through the correlation key, as the remote id was not known yet
    assert set(WebhookEvent.objects.values_list("task__name", flat=True)) == {"video", "poster"}
    sub.refresh_from_db()
    assert sub.status == "ready"


def test_webhook_during_create_then_a_late_processing_changes_nothing(cloud) -> None:
    cloud.inject(Fault.webhook_during_create("succeeded", times=2))
    sub = submitted_upload()
    video = sub.tasks.get(name="video")

    cloud.set_status(video.remote_id, "processing", progress=10)

    assert cloud.deliveries[-1].status_code == 200
    video.refresh_from_db()
    assert (video.status, video.progress) == (Status.SUCCEEDED, 100)


def test_duplicated_and_reordered_deliveries(cloud) -> None:
    sub = submitted_upload()
    video = sub.tasks.get(name="video")
    assert video.status == Status.PENDING

    cloud.inject_webhook("duplicate")
    cloud.set_status(video.remote_id, "processing", progress=40)
    cloud.inject_webhook("hold", "hold")
    cloud.set_status(video.remote_id, "running", progress=80)
    cloud.complete(video.remote_id)
    cloud.release_held(reverse=True)  # succeeded arrives before running

    assert [d.status_code for d in cloud.deliveries] == [200] * 4
    video.refresh_from_db()
    assert (video.status, video.progress) == (Status.SUCCEEDED, 100)
    duplicate = WebhookEvent.objects.get(raw_status="processing")
    assert duplicate.delivery_count == 2
    assert WebhookEvent.objects.count() == 3


def test_resync_recovers_a_dropped_webhook_through_backend_get(cloud) -> None:
    sub = submitted_upload()
    video = sub.tasks.get(name="video")
    cloud.inject_webhook("drop")
    cloud.complete(video.remote_id)
    assert cloud.deliveries[-1].state == "dropped"
    Task.objects.update(updated_at=timezone.now() - timedelta(hours=1))

    call_command("tapestry_media", "resync", "--wait", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert cloud.count("GET", "/tasks/*") == 2
    video.refresh_from_db()
    assert video.status == Status.SUCCEEDED
    assert video.output_url == by_remote_id(cloud, video)["output"]["url"]
    assert sub.tasks.get(name="poster").status == Status.PENDING
