"""The "jobs" API mode end to end: uploads become ``POST /jobs`` jobs on the contract server,
their events come back through the webhook view, resync polls ``GET /jobs/{id}`` and backfills
lost results from ``GET /events``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from tapestry_media import backfill, resync
from tapestry_media.backends import get_backend
from tapestry_media.backends import ittybit_resources as resources
from tapestry_media.conf import get_settings
from tapestry_media.models import EventCursor, Submission, Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.contract_server import (
    DEFAULT_API_KEY,
    DEFAULT_WEBHOOK_SECRET,
    ContractServer,
    Fault,
)
from tapestry_media.testing.jobs import run_jobs
from tapestry_media.testing.webhooks import closing_deliverer

from .helpers import video_upload

# The server delivers webhooks from its own thread: the rows must be committed to be seen.
pytestmark = pytest.mark.django_db(transaction=True)


def configure(settings, server: ContractServer, **extra: object) -> None:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "BACKEND": "ittybit",
        "API_MODE": "jobs",
        "API_KEY": DEFAULT_API_KEY,
        "API_BASE_URL": server.url,
        "WEBHOOK_SECRETS": [DEFAULT_WEBHOOK_SECRET],
        "WEBHOOK_URL": "https://tapestry-app.com/tapestry/webhooks/ittybit/",
        "HTTP_RETRIES": 0,
        **extra,
    }


@pytest.fixture
def contract_server_options() -> dict[str, Any]:
    return {
        "deliver": closing_deliverer(),
        "webhook_envelope": "event",
        "webhook_scheme": "standard",
    }


@pytest.fixture
def server(contract_server: ContractServer, settings) -> ContractServer:
    configure(settings, contract_server)
    return contract_server


def upload() -> list[Task]:
    submission = Submission.objects.create(file=video_upload())
    run_jobs()
    return list(submission.tasks.order_by("pk"))


def fresh(task: Task) -> Task:
    return Task.objects.get(pk=task.pk)


def test_an_upload_creates_jobs_with_the_seed_body_and_the_job_id_is_the_remote_id(
    server,
) -> None:
    video, _poster = upload()

    creates = [r for r in server.requests if r.method == "POST"]
    assert [r.path for r in creates] == ["/jobs", "/jobs"]
    for request in creates:
        assert set(request.json) == {"input", "kind", "options", "metadata"}  # no webhook_url
        assert request.header("Accept-Version") == "latest"
    assert video.remote_id.startswith("job_")
    assert video.remote_id in server.task_ids
    assert server.task(video.remote_id)["tasks"][0]["kind"] == "probe"
    assert video.status == Status.PENDING  # "queued"


def test_the_job_event_finishes_the_task_with_its_url_string_output(server) -> None:
    video, _ = upload()

    job = server.complete(video.remote_id)

    assert isinstance(job["output"], str)
    task = fresh(video)
    assert task.status == Status.SUCCEEDED
    assert task.output_url == job["output"]
    assert task.finished_at == timezone.datetime.fromtimestamp(
        job["finished_at"] / 1000, tz=timezone.UTC
    )


def test_a_step_event_naming_the_job_applies_to_it(server) -> None:
    video, _ = upload()

    server.send_step_webhook(video.remote_id, "probe", status="succeeded")
    assert fresh(video).status == Status.PROCESSING  # a step's success is not the job's

    server.send_step_webhook(video.remote_id, "encode", status="failed")
    task = fresh(video)
    assert task.status == Status.FAILED
    assert task.output_url == ""
    event = WebhookEvent.objects.filter(topic="task.failed").get()
    assert event.task_id == task.pk
    assert event.remote_task_id == video.remote_id


def test_step_events_that_do_not_name_the_job_are_stored_and_ignored(server) -> None:
    video, _ = upload()
    server.steps_name_job = False

    deliveries = server.send_step_webhook(video.remote_id, "encode", status="failed")
    deliveries += server.send_step_webhook(video.remote_id, "export", status="succeeded")

    assert [d.status_code for d in deliveries] == [200, 200]
    assert fresh(video).status == Status.PENDING
    stored = WebhookEvent.objects.filter(topic__in=["task.failed", "task.succeeded"])
    assert stored.count() == 2
    assert set(stored.values_list("task", flat=True)) == {None}
    # positive control: the same step naming its job changes the task
    server.steps_name_job = True
    server.send_step_webhook(video.remote_id, "encode", status="failed")
    assert fresh(video).status == Status.FAILED


@pytest.mark.parametrize("job_status", ["cancelled", "failed"])
def test_a_job_ended_by_a_failed_step_is_failed(server, job_status: str) -> None:
    video, _ = upload()

    job = server.fail_job(video.remote_id, step="encode", status=job_status)

    assert job["status"] == job_status
    task = fresh(video)
    assert task.status == Status.FAILED
    assert task.error["message"] == "the encode step failed"


def test_a_job_cancelled_with_no_failed_step_stays_cancelled(server) -> None:
    video, _ = upload()
    server.set_status(video.remote_id, "cancelled")
    assert fresh(video).status == Status.CANCELLED


def test_resync_polls_get_jobs(server) -> None:
    video, poster = upload()
    server.complete(video.remote_id, deliver=False)
    Task.objects.update(updated_at=timezone.now() - timedelta(hours=1))

    report = resync.run(wait=True)

    assert sorted(report.polled) == sorted([video.pk, poster.pk])
    assert server.count("GET", f"/jobs/{video.remote_id}") == 1
    assert fresh(video).status == Status.SUCCEEDED
    assert fresh(poster).status == Status.PENDING


# --- the Events backfill -----------------------------------------------------------------------


def test_resync_backfills_dropped_results_from_events_before_polling(server, monkeypatch) -> None:
    monkeypatch.setattr(resources, "PAGE_SIZE", 1)  # every event on its own page
    tasks = upload()
    server.inject_webhook("drop", "drop")
    for task in tasks:
        server.complete(task.remote_id)
    assert {fresh(t).status for t in tasks} == {Status.PENDING}
    Task.objects.update(updated_at=timezone.now() - timedelta(hours=1))

    report = resync.run(wait=True)

    assert {fresh(t).status for t in tasks} == {Status.SUCCEEDED}
    assert report.backfilled is not None
    assert report.backfilled.outcomes == {"applied": 2}
    assert report.polled == []  # the events settled them: nothing left to poll
    pages = [r for r in server.requests if r.path == "/events"]
    assert [r.query.get("kind") for r in pages] == [["task.succeeded"]] * 2 + [["task.failed"]]
    assert all(r.query["order"] == ["asc"] for r in pages)
    assert "after" not in pages[0].query
    assert pages[1].query["after"] == [server.events.events[-2]["id"]]
    assert EventCursor.objects.get(kind="task.succeeded").after == server.events.events[-1]["id"]
    assert set(WebhookEvent.objects.values_list("source", flat=True)) == {"events"}


def test_the_next_pass_starts_at_the_cursor_and_duplicates_dedup(server) -> None:
    video, poster = upload()
    server.complete(video.remote_id)  # delivered as a webhook
    first = backfill.run(get_backend())
    assert first.outcomes == {"duplicate": 1}  # the delivered event, read again
    assert WebhookEvent.objects.get().delivery_count == 2

    server.inject_webhook("drop")
    server.complete(poster.remote_id)
    second = backfill.run(get_backend())

    assert second.outcomes == {"applied": 1}
    assert fresh(poster).status == Status.SUCCEEDED
    last = [r for r in server.requests if r.path == "/events"][-2]  # task.succeeded's
    assert last.query["after"] == [server.events.events[-2]["id"]]


def test_a_next_link_off_the_api_is_not_followed(server, monkeypatch) -> None:
    monkeypatch.setattr(resources, "PAGE_SIZE", 1)
    server.events_link_base = "http://127.0.0.1:9"  # another origin: it would get the API key
    tasks = upload()
    server.inject_webhook("drop", "drop")
    for task in tasks:
        server.complete(task.remote_id)

    report = backfill.run(get_backend())

    assert report.outcomes == {"applied": 2}
    assert report.errors == {}
    pages = [r for r in server.requests if r.path == "/events"]
    assert pages[1].query["after"] == [server.events.events[0]["id"]]


def test_a_failing_events_resource_leaves_the_cursor_and_polling_goes_on(server) -> None:
    video, _ = upload()
    server.inject_webhook("drop")
    server.complete(video.remote_id)
    Task.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    server.inject(Fault.error(500, path="/events", times=None))

    report = resync.run(wait=True)

    assert report.backfilled is not None
    assert set(report.backfilled.errors) == {"task.succeeded", "task.failed"}
    assert not EventCursor.objects.exists()
    assert fresh(video).status == Status.SUCCEEDED  # by polling
    assert video.pk in report.polled


def test_the_tasks_mode_has_no_backfill(server, settings) -> None:
    configure(settings, server, API_MODE="tasks")
    assert resync.run(wait=True).backfilled is None
    assert server.count(path="/events") == 0


def test_a_job_result_during_the_create_call_is_matched_by_its_metadata(server) -> None:
    server.inject(Fault.webhook_during_create("succeeded", times=2))

    tasks = upload()

    assert [d.status_code for d in server.deliveries] == [200, 200]
    for task in tasks:
        assert task.remote_id.startswith("job_")
        assert task.status == Status.SUCCEEDED


def test_the_resync_command_reports_the_backfill(server) -> None:
    video, _ = upload()
    server.inject_webhook("drop")
    server.complete(video.remote_id)
    out = StringIO()

    call_command("tapestry_media", "resync", "--wait", stdout=out)

    assert "events backfill: 1 event(s) read: 1 applied" in out.getvalue()
    assert fresh(video).status == Status.SUCCEEDED


def test_an_unknown_api_mode_names_the_setting(settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "API_MODE": "job"}
    with pytest.raises(ImproperlyConfigured, match=r"\['API_MODE'\] must be one of"):
        get_settings()
