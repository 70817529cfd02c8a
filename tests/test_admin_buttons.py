"""Retry, Resync and Resubmit as buttons on the task and submission change pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tapestry_media.models import Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import enqueued, enqueued_names

from .helpers import grant, upload

pytestmark = pytest.mark.django_db


def change_url(obj: Task | Submission) -> str:
    return reverse(f"admin:tapestry_media_{obj._meta.model_name}_change", args=[obj.pk])


def button_url(obj: Task | Submission, action: str) -> str:
    return reverse(f"admin:tapestry_media_{obj._meta.model_name}_act", args=[obj.pk, action])


def test_a_failed_task_is_retried_from_its_page(
    admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    task = upload().tasks.get(name="video")
    Task.objects.filter(pk=task.pk).update(status=Status.FAILED, remote_id="task_old")
    page = admin_client.get(change_url(task)).content.decode()
    assert f'action="{button_url(task, "retry_action")}"' in page
    assert "Retry (new attempt)" in page
    assert f'action="{button_url(task, "resync_action")}"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(button_url(task, "retry_action"))
    assert response.status_code == 302
    assert response["Location"] == change_url(task)
    task.refresh_from_db()
    assert (task.status, task.attempt, task.remote_id) == (Status.CREATED, 2, None)
    assert enqueued_names() == ["submit_task"]
    assert enqueued()[0].args == [task.pk]
    shown = admin_client.get(response["Location"]).content.decode()
    assert "1 retried." in shown


def test_resync_and_resubmit_from_a_submissions_page(
    admin_client: Client, django_capture_on_commit_callbacks
) -> None:
    sub = upload()
    Task.objects.filter(submission=sub).update(status=Status.PENDING, remote_id=None)
    for n, task in enumerate(sub.tasks.order_by("pk")):
        Task.objects.filter(pk=task.pk).update(remote_id=f"task_r{n}")
    page = admin_client.get(change_url(sub)).content.decode()
    assert f'action="{button_url(sub, "resync_action")}"' in page
    assert f'action="{button_url(sub, "resubmit_action")}"' in page

    admin_client.post(button_url(sub, "resync_action"))
    assert len(enqueued()) == 2  # a poll job per current task

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(button_url(sub, "resubmit_action"))
    sub.refresh_from_db()
    assert sub.file_generation == 1


def test_a_viewer_sees_no_buttons_and_cannot_post(client: Client, django_user_model) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    grant(viewer, "view_task")
    client.force_login(viewer)
    task = upload().tasks.get(name="video")
    Task.objects.filter(pk=task.pk).update(status=Status.FAILED)
    page = client.get(change_url(task))
    assert page.status_code == 200
    assert "/act/" not in page.content.decode()
    assert client.post(button_url(task, "retry_action")).status_code == 403
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert enqueued() == []


def test_only_listed_actions_by_post(admin_client: Client) -> None:
    task = upload().tasks.get(name="video")
    Task.objects.filter(pk=task.pk).update(status=Status.FAILED)
    assert admin_client.get(button_url(task, "retry_action")).status_code == 405
    assert admin_client.post(button_url(task, "delete_selected")).status_code == 404
    missing = reverse("admin:tapestry_media_task_act", args=[999999, "retry_action"])
    assert admin_client.post(missing).status_code == 404
    assert Task.objects.filter(pk=task.pk).exists()
