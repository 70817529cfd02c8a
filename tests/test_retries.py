"""Deferred submit retries: a job that arrives early is enqueued again for its time (or left to
resync where the task backend cannot defer); a retry due past ``MAX_DEFER`` waits in ``created``
and resync enqueues it once due, whatever ``STALE_AFTER`` says. Real worker processes on
django-tasks-db, RQ and Celery: tests/test_queues.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from tapestry_media import conf, defer, retries
from tapestry_media.backends import TransientBackendError
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.models import Task
from tapestry_media.status import Status
from tapestry_media.submit_step import run_submit
from tapestry_media.tasks_shim import task_backends
from tapestry_media.testing.jobs import enqueued, run_jobs

pytestmark = pytest.mark.django_db


def waiting_task(ahead: timedelta, priority: int = 0) -> Task:
    """A task given back after a transient error, its retry due ``ahead`` from now."""
    return Task.objects.create(
        kind="video",
        input="https://x.test/a.mov",
        backend="dummy",
        status=Status.CREATED,
        retries=1,
        priority=priority,
        next_attempt_at=timezone.now() + ahead,
    )


def time_passes(task: Task, until_due_by: timedelta = timedelta(seconds=1)) -> None:
    """Move the task's clock stamps back so its retry became due ``until_due_by`` ago."""
    task.refresh_from_db()
    shift = task.next_attempt_at - timezone.now() + until_due_by
    Task.objects.filter(pk=task.pk).update(
        next_attempt_at=F("next_attempt_at") - shift, updated_at=F("updated_at") - shift
    )


def resync() -> str:
    out = StringIO()
    call_command("tapestry_media", "resync", stdout=out)
    return out.getvalue()


@pytest.fixture
def no_defer(monkeypatch) -> None:
    """The configured task backend cannot defer (like ``ImmediateBackend``)."""
    monkeypatch.setattr(task_backends["default"], "supports_defer", False)


def test_an_early_job_is_enqueued_again_for_the_retry_time(caplog) -> None:
    task = waiting_task(timedelta(seconds=1.5), priority=10)
    with caplog.at_level(logging.INFO, logger="tapestry_media.retries"):
        assert run_submit(task.pk) == "early"

    [again] = enqueued()
    assert again.args == [task.pk]
    assert again.task.run_after == task.next_attempt_at + retries.EARLY_TOLERANCE
    assert again.task.priority == 10
    assert "arrived 1." in caplog.text
    assert "enqueued again" in caplog.text
    assert Task.objects.get(pk=task.pk).status == Status.CREATED
    assert DummyBackend.calls == []


def test_the_early_job_submits_once_its_time_has_come() -> None:
    task = waiting_task(timedelta(seconds=1.5))
    assert run_submit(task.pk) == "early"
    Task.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now())  # time passes
    assert run_jobs(include_deferred=True) == ["submitted"]
    assert Task.objects.get(pk=task.pk).status == Status.PENDING
    assert len(DummyBackend.calls) == 1


def test_a_job_for_a_task_taken_by_another_worker_is_not_enqueued_again() -> None:
    task = waiting_task(timedelta(seconds=1.5))
    Task.objects.filter(pk=task.pk).update(status=Status.SUBMITTING)
    assert run_submit(task.pk) == "skipped"
    assert enqueued() == []


def test_a_due_job_is_not_early() -> None:
    task = waiting_task(-timedelta(seconds=1))
    assert run_submit(task.pk) == "submitted"
    assert enqueued() == []


def test_without_defer_an_early_job_is_left_to_resync_not_enqueued_at_once(
    no_defer, caplog
) -> None:
    task = waiting_task(timedelta(seconds=30))
    with caplog.at_level(logging.INFO, logger="tapestry_media.retries"):
        assert run_submit(task.pk) == "early"
    assert enqueued() == []
    assert "cannot defer" in caplog.text

    assert "0 resubmitted" in resync()  # not due yet
    time_passes(task)
    assert "1 resubmitted" in resync()  # due: resync takes it, long before STALE_AFTER
    assert "0 resubmitted" in resync()  # once
    assert run_jobs() == ["submitted"]


# --- MAX_DEFER ----------------------------------------------------------------------------------


def fail_once(settings, **tapestry) -> Task:
    """Submit a task whose create fails transiently once, with the given settings."""
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, **tapestry}
    DummyBackend.failures = [TransientBackendError("503 from API", status_code=503)]
    task = Task.objects.create(kind="video", input="https://x.test/a.mov", backend="dummy")
    assert run_submit(task.pk) == "retry"
    task.refresh_from_db()
    assert (task.status, task.retries) == (Status.CREATED, 1)
    return task


def test_a_retry_due_past_max_defer_waits_in_created_for_resync(settings) -> None:
    task = fail_once(settings, SUBMIT_BACKOFF_BASE=3600, MAX_DEFER=1800, STALE_AFTER=86400)
    assert task.next_attempt_at - timezone.now() > timedelta(minutes=30)
    assert enqueued() == []  # not handed to the task backend

    assert "0 resubmitted" in resync()  # not due yet
    time_passes(task)
    assert "1 resubmitted" in resync()  # due, though STALE_AFTER (a day) has not passed
    assert "0 resubmitted" in resync()  # once
    assert run_jobs() == ["submitted"]
    assert Task.objects.get(pk=task.pk).status == Status.PENDING


def test_a_retry_within_max_defer_is_deferred_and_not_taken_by_resync(settings) -> None:
    task = fail_once(settings, SUBMIT_BACKOFF_BASE=60, MAX_DEFER=1800, STALE_AFTER=86400)
    [deferred] = enqueued()
    assert deferred.task.run_after == task.next_attempt_at  # positive control: it was enqueued
    time_passes(task)
    assert "0 resubmitted" in resync()  # its own job is queued: resync leaves it alone


def test_max_defer_zero_never_defers(settings) -> None:
    task = fail_once(settings, SUBMIT_BACKOFF_BASE=0.5, MAX_DEFER=0, STALE_AFTER=86400)
    assert enqueued() == []
    time_passes(task)
    assert "1 resubmitted" in resync()


def test_max_defer_defaults_by_task_backend(settings, monkeypatch) -> None:
    assert defer.max_defer() is None  # django.tasks' DummyBackend: no limit
    package = type(task_backends["default"]).__module__.split(".")[0]  # django or django_tasks
    monkeypatch.setitem(defer.DEFAULT_MAX_DEFER, package, timedelta(minutes=7))
    assert defer.max_defer() == timedelta(minutes=7)  # looked up by the class's package
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "MAX_DEFER": 90}
    assert defer.max_defer() == timedelta(seconds=90)  # the setting wins
    assert defer.DEFAULT_MAX_DEFER["django_tasks_celery"] < timedelta(minutes=30)


@pytest.mark.parametrize("value", [-1, "10m", True, [60]])
def test_max_defer_refuses_bad_values(value) -> None:
    [problem] = conf.validate({"MAX_DEFER": value})
    assert "MAX_DEFER" in problem


@pytest.mark.parametrize("value", [None, 0, 90, 1.5, timedelta(minutes=20)])
def test_max_defer_takes_seconds_or_a_timedelta(value) -> None:
    assert conf.validate({"MAX_DEFER": value}) == []
    loaded = conf.load({"MAX_DEFER": value}).MAX_DEFER
    assert loaded is None if value is None else isinstance(loaded, timedelta)


def test_a_retry_that_falls_due_between_the_claim_and_the_check_is_submitted(
    monkeypatch,
) -> None:
    """The claim reads the clock before the retry time, the check after it: the job must not
    end as "skipped" with nothing queued (it was seen on RQ, whose jobs run near the boundary)."""
    from tapestry_media import submit_step

    task = waiting_task(timedelta(milliseconds=300))
    real_claim = submit_step.claim
    claims: list[object] = []

    def claim_then_time_passes(task_pk: int) -> Task | None:
        claimed = real_claim(task_pk)
        claims.append(claimed)
        if len(claims) == 1:
            Task.objects.filter(pk=task_pk).update(next_attempt_at=timezone.now())
        return claimed

    monkeypatch.setattr(submit_step, "claim", claim_then_time_passes)
    assert run_submit(task.pk) == "submitted"
    assert claims[0] is None  # the first claim really came too early
    assert len(DummyBackend.calls) == 1
    assert enqueued() == []


def test_max_defer_from_the_environment() -> None:
    import environ

    from tapestry_media.env import settings_from_env

    env = environ.FileAwareEnv()
    env.ENVIRON = environ.FileAwareMapping(env={"TAPESTRY_MEDIA_MAX_DEFER": "20m"})
    values = settings_from_env(env)
    assert values["MAX_DEFER"] == timedelta(minutes=20)
    assert timedelta(minutes=20) == conf.load(values).MAX_DEFER
