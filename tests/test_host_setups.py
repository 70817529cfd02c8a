"""The upload → webhook → ready flow under the host setup the settings describe: ``auth.User``
on one database (tests.settings), a custom ``AUTH_USER_MODEL`` (tests.settings_custom_user), or
a database router sending this app's models and the user model to a second alias
(tests.settings_router). CI runs this module under each.

Every alias but the one the router gives this app's models is fenced off while a test runs:
a transaction, an ``on_commit`` callback, a row lock or a query the app opens on ``default``
instead of its routed alias fails the test (the one-transaction guarantee and the signals
after commit would silently not hold there)."""

from __future__ import annotations

import io
import traceback
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tapestry_media import pipeline, resync
from tapestry_media.backends import PermanentBackendError
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.models import LocalJob, Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import clear_jobs, enqueued, enqueued_names, run_jobs
from tapestry_media.testing.webhooks import post_webhook

from . import helpers
from .helpers import video_upload
from .media import clip_upload, make_clip

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

APP_ALIAS = router.db_for_write(Task)


class Fence:
    """Refuses, and records, every use of the fenced aliases' connections."""

    def __init__(self, aliases: list[str]) -> None:
        self.aliases = aliases
        self.misuses: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for alias in self.aliases:
            connection = connections[alias]
            connection.close()  # from now on every use goes through ensure_connection

            def refuse(*args: Any, _alias: str = alias, **kwargs: Any) -> None:
                where = "".join(traceback.format_stack(limit=8)[:-1])
                message = f"the {_alias!r} alias was used; this app's models are on {APP_ALIAS!r}"
                self.misuses.append(f"{message}\n{where}")
                raise AssertionError(message)

            monkeypatch.setattr(connection, "ensure_connection", refuse)


@pytest.fixture(autouse=True)
def fence(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fence]:
    guard = Fence([alias for alias in connections if alias != APP_ALIAS])
    guard.install(monkeypatch)
    yield guard
    assert guard.misuses == [], "\n\n".join(guard.misuses)


def make_user(name: str, **extra: Any) -> Any:
    return helpers.make_user(name, password=f"pw-{name}", **extra)


def api_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post_upload(user: Any, file: Any = None) -> Submission:
    """An upload through the API; its two steps' submit jobs are queued once it commits."""
    response = api_for(user).post(
        reverse("tapestry_media:submission-list"),
        {"file": file or video_upload(), "campaign": "summer-launch"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert enqueued_names() == ["submit_task", "submit_task"]
    return Submission.objects.get(public_id=response.json()["id"])


def upload(user: Any) -> Submission:
    """An upload through the API, its two steps submitted to the dummy backend: ``pending``."""
    submission = post_upload(user)
    run_jobs()
    assert {t.status for t in submission.tasks.all()} == {Status.PENDING}
    return submission


def run_queued_jobs() -> None:
    """Run the jobs queued so far, not the ones they queue."""
    queued = enqueued()
    clear_jobs()
    for result in queued:
        result.task.call(*result.args, **result.kwargs)


def test_upload_webhook_ready(signal_log) -> None:
    user = make_user("alice")
    submission = upload(user)
    assert submission.uploader == user
    assert signal_log.names().count("task_submitted") == 2

    for task in submission.tasks.all():
        assert task.metadata["user_id"] == f"usr_{user.pk}"
        assert post_webhook(Client(), task, "succeeded").status_code == 200

    submission.refresh_from_db()
    assert (submission.status, submission.processed_at is not None) == ("ready", True)
    assert signal_log.names().count("task_succeeded") == 2
    assert signal_log.only("submission_processed")["status"] == "ready"
    detail = api_for(user).get(
        reverse("tapestry_media:submission-detail", args=[submission.public_id])
    )
    assert detail.status_code == 200
    assert detail.json()["status"] == "ready"
    assert detail.json()["user_id"] == f"usr_{user.pk}"


def test_a_step_added_through_the_api_is_submitted(signal_log) -> None:
    """The task endpoint: the user's permissions are read (``submit_any_input``), the task is
    created in a transaction on the app's alias, its job queued once that commits."""
    user = make_user("alice")
    submission = upload(user)
    signal_log.clear()
    response = api_for(user).post(
        reverse("tapestry_media:task-list"),
        {"input": submission.public_id, "kind": "audio", "options": {"format": "mp3"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    task = Task.objects.get(uuid=response.json()["id"])
    assert (task.created_by, task.submission) == (user, submission)
    assert enqueued_names() == ["submit_task"]
    run_jobs()
    task.refresh_from_db()
    assert task.status == Status.PENDING
    assert signal_log.names().count("task_submitted") == 1


def test_a_refused_submit_fails_the_task_and_a_retry_is_a_new_attempt(signal_log) -> None:
    user = make_user("alice")

    def refuse(spec: Any, key: str) -> None:
        raise PermanentBackendError("unsupported input", kind="input_refused")

    DummyBackend.on_create = refuse
    response = api_for(user).post(
        reverse("tapestry_media:submission-list"), {"file": video_upload()}, format="multipart"
    )
    assert response.status_code == 201
    run_jobs()
    submission = Submission.objects.get(public_id=response.json()["id"])
    assert {t.status for t in submission.tasks.all()} == {Status.FAILED}
    assert signal_log.names().count("task_failed") == 2

    DummyBackend.on_create = None
    video = submission.tasks.get(name="video")
    assert pipeline.start_new_attempt(video.pk)
    assert enqueued_names() == ["submit_task"]
    run_jobs()
    video.refresh_from_db()
    assert (video.status, video.attempt) == (Status.PENDING, 2)


def test_the_local_engine_queues_its_job_once_the_task_is_recorded(settings, tmp_path) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "BACKEND": "local"}
    post_upload(make_user("alice"), clip_upload(make_clip(tmp_path / "clip.mp4", seconds=1)))
    run_queued_jobs()  # the submit jobs: each records its engine job and queues it
    assert enqueued_names() == ["run_local_job", "run_local_job"]
    assert LocalJob.objects.filter(state=LocalJob.State.PENDING).count() == 2


def test_upload_local_engine_ready(settings, tmp_path, signal_log) -> None:
    """The same flow on the local engine: ffmpeg runs, its signed result is applied."""
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "BACKEND": "local"}
    user = make_user("alice")
    submission = post_upload(user, clip_upload(make_clip(tmp_path / "clip.mp4", seconds=1)))
    run_jobs()
    submission.refresh_from_db()
    assert submission.status == "ready", [t.error for t in submission.tasks.all()]
    assert LocalJob.objects.filter(state=LocalJob.State.SUCCEEDED).count() == 2
    assert signal_log.only("submission_processed")["status"] == "ready"


def test_resync_puts_a_stuck_task_back_in_the_queue() -> None:
    task = Task.objects.create(kind="video", input="https://x.test/a.mov", backend="dummy")
    Task.objects.filter(pk=task.pk).update(
        status=Status.SUBMITTING, updated_at=timezone.now() - timedelta(hours=2)
    )
    report = resync.run()
    assert "submit_task" in enqueued_names(), report
    task.refresh_from_db()
    assert task.status == Status.CREATED


def test_deleting_an_upload_removes_its_file_once_the_delete_commits() -> None:
    submission = upload(make_user("alice"))
    name = submission.file.name
    assert default_storage.exists(name)
    submission.delete()
    assert not default_storage.exists(name)


def test_the_command_line_creates_and_submits_a_task() -> None:
    call_command(
        "ittybit", "video", "-i", "https://tapestry-app.com/in/clip.mov", "--json",
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    task = Task.objects.get()
    assert (task.status, len(DummyBackend.calls)) == (Status.PENDING, 1)


def test_the_admin_finds_an_upload_by_its_uploaders_login() -> None:
    """Whatever the user model calls its login (``username``, ``email``)."""
    mine = Submission.objects.create(uploader=make_user("alice"), file=video_upload())
    Submission.objects.create(uploader=make_user("bob"), file=video_upload())
    login = mine.uploader.get_username()
    model_admin = django_admin.site._registry[Submission]
    rows, _ = model_admin.get_search_results(
        RequestFactory().get("/"), Submission.objects.all(), login.upper()
    )
    assert list(rows) == [mine]


# --- the router's setup itself (tests.settings_router only) ---------------------------------


@pytest.mark.routed
def test_the_app_and_the_users_live_on_the_media_alias_only() -> None:
    assert APP_ALIAS == "media"
    assert router.db_for_write(get_user_model()) == "media"
    media = set(connections["media"].introspection.table_names())
    default = connections.create_connection(DEFAULT_DB_ALIAS)  # not the fenced wrapper
    try:
        on_default = set(default.introspection.table_names())
    finally:
        default.close()
    for table in (Task._meta.db_table, get_user_model()._meta.db_table):
        assert (table in media, table in on_default) == (True, False), table
    assert ("django_session" in media, "django_session" in on_default) == (False, True)


@pytest.mark.routed
def test_the_fence_refuses_a_transaction_or_callback_on_default(fence) -> None:
    """Positive control: the app's slips are caught, whatever they are."""
    with pytest.raises(AssertionError, match="'default' alias was used"), transaction.atomic():
        pass
    with pytest.raises(AssertionError, match="'default' alias was used"):
        transaction.on_commit(lambda: None)
    assert len(fence.misuses) == 2
    fence.misuses.clear()
