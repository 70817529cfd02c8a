"""The one result path (reconcile.apply) as a host meets it: the task is written through
``Task.save``, polls are stored as events, and a lost lock conflict is run again."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.models.signals import post_save, pre_save
from django.test import Client

from tapestry_media import reconcile, webhooks
from tapestry_media.database import is_conflict
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.remote import parse_task
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import build_webhook, post_webhook

pytestmark = pytest.mark.django_db


def pending_task(remote_id: str = "task_rp1") -> Task:
    return Task.objects.create(
        kind="video",
        input="https://x.test/a.mov",
        backend="dummy",
        status=Status.PENDING,
        remote_id=remote_id,
    )


def test_a_delivery_saves_the_task_through_the_model(client: Client) -> None:
    """Host receivers of Task's pre_save/post_save see the delivery, and ``auto_now`` moves."""
    task = pending_task()
    before = task.updated_at
    seen: list[tuple[str, frozenset[str] | None]] = []

    def receiver(sender: Any, instance: Task, update_fields: Any = None, **kwargs: Any) -> None:
        seen.append((instance.status, update_fields and frozenset(update_fields)))

    pre_save.connect(receiver, sender=Task, dispatch_uid="test-pre")
    post_save.connect(receiver, sender=Task, dispatch_uid="test-post")
    try:
        assert post_webhook(client, build_webhook(task, "succeeded")).status_code == 200
    finally:
        pre_save.disconnect(dispatch_uid="test-pre", sender=Task)
        post_save.disconnect(dispatch_uid="test-post", sender=Task)
    assert len(seen) == 2
    for status, fields in seen:
        assert status == Status.SUCCEEDED
        assert fields is not None
        assert {"status", "updated_at", "output"} <= fields
    task.refresh_from_db()
    assert task.updated_at > before


def test_a_polled_state_is_stored_as_an_event_and_counted_when_it_repeats() -> None:
    task = pending_task()
    remote = parse_task({"id": task.remote_id, "status": "processing", "progress": 30})
    assert webhooks.record_poll(remote, task_pk=task.pk).reason == "applied"
    event = WebhookEvent.objects.get()
    assert (event.source, event.task_id, event.delivery_count) == ("poll", task.pk, 1)
    assert event.processed_at is not None

    assert webhooks.record_poll(remote, task_pk=task.pk).reason == "duplicate"
    event.refresh_from_db()
    assert event.delivery_count == 2
    task.refresh_from_db()
    assert (task.status, task.progress) == (Status.PROCESSING, 30)

    later = parse_task({"id": task.remote_id, "status": "succeeded"})
    assert webhooks.record_poll(later, task_pk=task.pk).reason == "applied"
    assert WebhookEvent.objects.count() == 2


def conflict() -> OperationalError:
    """A deadlock as Django raises it: the driver's error as the cause."""
    try:
        import psycopg

        cause: Exception = psycopg.errors.DeadlockDetected("deadlock detected")
    except ImportError:  # pragma: no cover - psycopg is in the dev extra
        cause = Exception(1213, "Deadlock found when trying to get lock")
    error = OperationalError("deadlock detected")
    error.__cause__ = cause
    return error


def test_conflicts_are_recognised() -> None:
    assert is_conflict(conflict())
    mysql = OperationalError(1213, "Deadlock found")
    mysql.__cause__ = Exception(1213, "Deadlock found")
    assert is_conflict(mysql)
    assert not is_conflict(OperationalError("could not connect to server"))


@pytest.mark.django_db(transaction=True)
def test_a_lost_lock_conflict_is_run_again_inside_the_request() -> None:
    """In autocommit (as the view runs), a deadlock after the event insert rolls back and the
    whole transaction runs again: one event, the task moved, a 200."""
    task = pending_task()
    real_save = Task.save
    failures = {"left": 1}

    def save_once_failing(self: Task, *args: Any, **kwargs: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise conflict()
        real_save(self, *args, **kwargs)

    with mock.patch.object(Task, "save", save_once_failing):
        response = post_webhook(Client(), build_webhook(task, "succeeded"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    assert failures["left"] == 0
    event = WebhookEvent.objects.get()
    assert (event.task_id, event.delivery_count, event.error) == (task.pk, 1, "")
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_are_not_run_again() -> None:
    """Positive control for the test above: an error that is no conflict is stored as the
    event's failure, not retried."""
    task = pending_task()
    calls = {"n": 0}

    def down(self: Task, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        raise OperationalError("could not connect to server")

    with mock.patch.object(Task, "save", down):
        response = post_webhook(Client(), build_webhook(task, "succeeded"))
    assert response.status_code == 500
    assert calls["n"] == 1
    event = WebhookEvent.objects.get()
    assert event.error.startswith("OperationalError")
    assert event.task_id is None


def test_a_stored_event_is_applied_and_marked_in_one_transaction() -> None:
    """Reprocessing (the admin, late matching) applies and marks together: if applying
    fails, the event stays unprocessed with the error, and the task is unchanged."""
    task = pending_task()
    body = b'{"id": "task_rp1", "status": "succeeded"}'
    failing_merge = mock.patch.object(reconcile, "merge", side_effect=RuntimeError("boom"))
    with failing_merge, pytest.raises(webhooks.ProcessingError):
        webhooks.deliver(body)
    event = WebhookEvent.objects.get()
    assert (event.processed_at, event.error) == (None, "RuntimeError: boom")

    failing_mark = mock.patch.object(reconcile, "_mark_processed", side_effect=RuntimeError("late"))
    with failing_mark, pytest.raises(webhooks.ProcessingError):
        webhooks.reprocess(event)
    task.refresh_from_db()
    assert task.status == Status.PENDING  # the merge was rolled back with the failed mark

    assert webhooks.reprocess(event).reason == "applied"  # positive control
    event.refresh_from_db()
    task.refresh_from_db()
    assert (event.task_id, event.error, task.status) == (task.pk, "", Status.SUCCEEDED)
    assert event.processed_at is not None
