"""The polling fallback (``manage.py tapestry_media resync``) and ``prune``."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from tapestry_media import resync
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.management.commands.tapestry_media import parse_duration
from tapestry_media.models import ErasureRequest, Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.jobs import clear_jobs, enqueued, enqueued_names, run_jobs
from tapestry_media.testing.webhooks import post_webhook, run_on_commit_callbacks

from .helpers import submitted_upload

pytestmark = pytest.mark.django_db


class NoGetBackend(DummyBackend):
    name = "noget"
    supports_get = False


def age(*tasks: Task, by: timedelta = timedelta(minutes=20)) -> None:
    Task.objects.filter(pk__in=[t.pk for t in tasks]).update(updated_at=timezone.now() - by)


def command(*args: str) -> str:
    out = StringIO()
    call_command("tapestry_media", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def gets(monkeypatch) -> list[str]:
    """Every ``backend.get`` call, by remote id."""
    calls: list[str] = []
    lock = threading.Lock()
    real_get = DummyBackend.get

    def counting_get(self: DummyBackend, remote_id: str) -> Any:
        with lock:
            calls.append(remote_id)
        return real_get(self, remote_id)

    monkeypatch.setattr(DummyBackend, "get", counting_get)
    return calls


def test_resync_recovers_a_task_whose_webhook_was_dropped(gets) -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    DummyBackend.finish(video.remote_id, "succeeded", output_url="https://cdn.x/v.mp4")
    age(video, poster)

    out = command("resync")

    assert "resync: 2 polled, 0 resubmitted, 0 retried (queued)" in out
    assert gets == []  # the command only enqueues; jobs call the API
    assert enqueued_names() == ["poll_task", "poll_task"]
    assert Task.objects.get(pk=video.pk).status == Status.PENDING
    run_jobs()
    assert sorted(gets) == sorted([video.remote_id, poster.remote_id])
    video.refresh_from_db()
    assert (video.status, video.output_url) == (Status.SUCCEEDED, "https://cdn.x/v.mp4")
    assert Task.objects.get(pk=poster.pk).status == Status.PENDING  # still pending remotely

    # idempotent: everything was just stamped, so a second run finds nothing
    assert "resync: 0 polled, 0 resubmitted" in command("resync")
    assert enqueued_names() == []


def test_fresh_tasks_are_left_alone_unless_stale_after_says_so(gets) -> None:
    video = submitted_upload().tasks.get(name="video")
    age(video, by=timedelta(minutes=1))
    assert "0 polled" in command("resync")
    assert "1 polled" in command("resync", "--stale-after", "30s", "--wait")
    assert gets == [video.remote_id]


def test_wait_runs_the_jobs_in_process() -> None:
    video = submitted_upload().tasks.get(name="video")
    DummyBackend.finish(video.remote_id, "failed", error={"kind": "x", "message": "boom"})
    age(video)
    out = command("resync", "--wait")
    assert "1 changed" in out
    assert enqueued_names() == []
    video.refresh_from_db()
    assert (video.status, video.error) == (Status.FAILED, {"kind": "x", "message": "boom"})


def test_lost_submit_job_and_dead_worker_are_resubmitted_with_the_same_key() -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    first_video_key = video.idempotency_key
    # The video's submit job was lost; the poster's worker died in the middle of create.
    Task.objects.filter(pk=video.pk).update(status=Status.CREATED, remote_id=None)
    Task.objects.filter(pk=poster.pk).update(status=Status.SUBMITTING, remote_id=None)
    age(video, poster)
    DummyBackend.calls.clear()

    out = command("resync")

    assert "0 polled, 2 resubmitted" in out
    assert enqueued_names() == ["submit_task", "submit_task"]
    assert Task.objects.get(pk=poster.pk).status == Status.CREATED  # handed back at once
    run_jobs()
    for task in (video, poster):
        task.refresh_from_db()
        assert task.status == Status.PENDING
        assert task.remote_id == f"task_dummy_{task.idempotency_key}"
    assert [c.idempotency_key for c in DummyBackend.calls if c.spec.kind == "video"] == [
        first_video_key
    ]


def test_a_task_waiting_for_its_backoff_is_not_resubmitted_early() -> None:
    video = submitted_upload().tasks.get(name="video")
    Task.objects.filter(pk=video.pk).update(
        status=Status.CREATED, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    age(video)
    assert "0 resubmitted" in command("resync")
    Task.objects.filter(pk=video.pk).update(next_attempt_at=timezone.now())
    age(video)
    assert "1 resubmitted" in command("resync")  # positive control


def test_failed_tasks_get_a_new_attempt_only_with_failed(client) -> None:
    sub = submitted_upload()
    video = sub.tasks.get(name="video")
    post_webhook(client, video, "failed")
    age(video)
    clear_jobs()

    assert "0 retried" in command("resync")
    assert Task.objects.get(pk=video.pk).attempt == 1

    with run_on_commit_callbacks():  # start_new_attempt enqueues after its commit
        out = command("resync", "--failed")
    assert "1 retried" in out
    assert enqueued_names() == ["submit_task"]
    run_jobs()
    video.refresh_from_db()
    assert (video.attempt, video.status) == (2, Status.PENDING)
    assert "0 retried" in command("resync", "--failed")  # not twice


def test_ids_limit_the_run_and_ignore_the_age(gets) -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    out = command("resync", "--ids", str(video.pk), "999999", "--wait")
    assert "1 polled" in out
    assert "not resynced (terminal, unknown or not stale): [999999]" in out
    assert gets == [video.remote_id]
    assert poster.remote_id not in gets


def test_backend_without_get_is_reported_not_crashed_on(gets) -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    Task.objects.filter(pk=video.pk).update(backend=f"{__name__}.NoGetBackend")
    age(video, poster)

    out = command("resync", "--wait")

    assert "1 polled" in out
    assert "1 not pollable" in out
    assert f"left to their webhooks: {video.pk}" in out
    assert gets == [poster.remote_id]


def test_a_failing_get_is_logged_and_the_run_goes_on(monkeypatch) -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    DummyBackend.finish(poster.remote_id, "succeeded")
    DummyBackend.tasks.pop(video.remote_id)  # the API answers 404 for it
    age(video, poster)
    report = resync.run(wait=True)
    assert report.results[video.pk].startswith("error: no task")
    assert report.results[poster.pk] == "applied"
    assert Task.objects.get(pk=video.pk).status == Status.PENDING


def test_admin_enqueue_resync_skips_what_cannot_be_polled() -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    Task.objects.filter(pk=poster.pk).update(status=Status.SUCCEEDED)
    assert resync.enqueue_resync([video.pk, poster.pk, 999999]) == 1
    assert enqueued_names() == ["poll_task"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2)),
     ("30d", timedelta(days=30)), (" 15M ", timedelta(minutes=15)), ("0s", timedelta(0))],
)  # fmt: skip
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["10", "10x", "m", "1.5h", "-5m", "", "10 minutes"])
def test_bad_duration_is_a_command_error_naming_it(bad: str) -> None:
    with pytest.raises(CommandError, match="is not a duration"):
        parse_duration(bad)
    with pytest.raises(CommandError, match=f"{bad!r} is not a duration"):
        command("resync", f"--stale-after={bad}")


def test_unknown_subcommand_is_a_command_error() -> None:
    with pytest.raises(CommandError):
        command("frobnicate")


# --- prune ------------------------------------------------------------------------------------


def make_event(key: str, *, days_old: int, processed: bool = True, task: Task | None = None) -> Any:
    event = WebhookEvent.objects.create(
        dedup_key=key, remote_task_id=f"task_{key}", body="{}", task=task,
        processed_at=timezone.now() if processed else None, error="" if processed else "boom",
    )  # fmt: skip
    when = timezone.now() - timedelta(days=days_old)
    WebhookEvent.objects.filter(pk=event.pk).update(first_received_at=when, last_received_at=when)
    return event


def test_prune_deletes_old_processed_events_only() -> None:
    task = Task.objects.create(kind="video", input="x", backend="dummy")
    make_event("old_matched", days_old=40, task=task)
    make_event("old_unmatched", days_old=40)
    make_event("old_failed", days_old=40, processed=False)
    make_event("young_matched", days_old=5, task=task)
    make_event("young_unmatched", days_old=5)

    dry = command("prune", "--older-than", "30d", "--dry-run")
    assert "2 webhook event(s) would be deleted (dry run)" in dry
    assert WebhookEvent.objects.count() == 5

    out = command("prune", "--older-than", "30d")
    assert "prune: 2 webhook event(s) deleted" in out
    assert "kept 1 old event(s) that were never processed" in out
    assert sorted(WebhookEvent.objects.values_list("dedup_key", flat=True)) == [
        "old_failed", "young_matched", "young_unmatched",
    ]  # fmt: skip
    assert Task.objects.filter(pk=task.pk).exists()
    assert "prune: 0 webhook event(s) deleted" in command("prune", "--older-than", "30d")


def test_prune_needs_older_than() -> None:
    with pytest.raises(CommandError, match=r"--older-than DURATION .*--orphans"):
        command("prune")


# --- two resyncs at once (a server database) ------------------------------------------------


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_two_resyncs_at_once_do_the_work_once(gets) -> None:
    tasks = [
        Task.objects.create(
            kind="video", input="https://x.test/a.mov", backend="dummy",
            status=Status.PROCESSING, remote_id=f"task_concurrent_{i}",
        )
        for i in range(60)
    ]  # fmt: skip
    for task in tasks:  # the API is still processing them; no webhook came
        DummyBackend.tasks[task.remote_id] = _remote(task.remote_id, "processing")
    # Several rounds: one race alone may happen to serialise.
    for round_ in range(3):
        age(*tasks)
        gets.clear()
        first, second = _race(lambda: resync.run(wait=True), lambda: resync.run(wait=True))
        assert first.isdisjoint(second), f"round {round_}: both claimed {first & second}"
        assert first | second == {t.pk for t in tasks}
        assert sorted(gets) == sorted(t.remote_id for t in tasks)  # each fetched once


def _race(*runs: Any) -> list[set[int]]:
    barrier = threading.Barrier(len(runs))
    polled: list[set[int]] = [set() for _ in runs]
    errors: list[BaseException] = []

    def contender(index: int) -> None:
        try:
            barrier.wait()
            polled[index] = set(runs[index]().polled)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return polled


def _remote(remote_id: str, status: str) -> Any:
    from tapestry_media.remote import parse_task

    return parse_task({"id": remote_id, "status": status})


def test_a_pending_erasure_whose_job_never_ran_is_queued_again(monkeypatch) -> None:
    """Queued 20 minutes ago and still there (the job was lost, or its worker died): queued
    again and stamped; one queued a minute ago is left to its job; a refused one is unstamped
    so the next resync takes it at once."""
    from tapestry_media import enqueue
    from tapestry_media.enqueue import ERASE_JOB

    now = timezone.now()
    ErasureRequest.objects.create(user_pk="101", enqueued_at=now - timedelta(minutes=20))
    ErasureRequest.objects.create(user_pk="102", enqueued_at=now - timedelta(minutes=1))

    out = command("resync")

    assert "pending erasures: 1 queued again" in out
    assert [(r.task.module_path, list(r.args)) for r in enqueued()] == [(ERASE_JOB, ["101"])]
    stamped = dict(ErasureRequest.objects.values_list("user_pk", "enqueued_at"))
    assert stamped["101"] >= now
    assert stamped["102"] == now - timedelta(minutes=1)
    clear_jobs()

    class Refusing:
        def enqueue(self, user_pk: str) -> None:
            raise ConnectionError("broker down")

    monkeypatch.setattr(enqueue, "_bound", lambda path: Refusing())
    out = command("resync", "--stale-after", "0s")
    assert "pending erasures: 0 queued again, 2 refused by the task backend" in out
    assert set(ErasureRequest.objects.values_list("enqueued_at", flat=True)) == {None}
    assert enqueued_names() == []


def test_ids_leave_pending_erasures_alone() -> None:
    ErasureRequest.objects.create(user_pk="101")
    report = resync.run(ids=[123456])
    assert report.erasures == 0
    assert enqueued_names() == []
