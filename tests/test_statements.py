"""tapestry_media.statements: the result path's plain SQL gives what the ORM gives.

Every test here (and in the webhook, reconcile and aggregate modules) runs twice, ``[sql]``
and ``[orm]`` (tests/conftest.py), so both paths must give the same rows and outcomes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tapestry_media import statements
from tapestry_media.models import Submission, Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import build_webhook, post_webhook

from .conftest import video_upload

pytestmark = pytest.mark.django_db

_WHEN = datetime(2026, 11, 29, 12, 30, 15, 123456, tzinfo=UTC)


def full_task(**fields: Any) -> Task:
    """A task with every kind of column filled (JSON, UUID, datetimes, NULL-able text)."""
    submission = Submission.objects.create(file=video_upload())
    task = Task.objects.get(submission=submission, name="video")
    values: dict[str, Any] = {
        "status": Status.PROCESSING,
        "raw_status": "processing",
        "remote_id": "task_full",
        "progress": 40,
        "started_at": _WHEN,
        "output": {"url": "https://cdn.test/a.mp4", "nested": {"list": [1, 2.5, None, "ü"]}},
        "error": {"kind": "x", "message": "y"},
        "attempts": [{"attempt": 1, "remote_id": "task_old"}],
        **fields,
    }
    Task.objects.filter(pk=task.pk).update(**values)
    return Task.objects.get(pk=task.pk)


def columns(task: Task) -> dict[str, Any]:
    return {f.attname: getattr(task, f.attname) for f in Task._meta.concrete_fields}


def test_each_path_runs_its_own_statements(statement_path) -> None:
    """The ``[sql]``/``[orm]`` switch really changes the SQL sent (positive control for the
    rest of the comparisons)."""
    task = full_task()
    webhook = build_webhook(task, "succeeded")
    with CaptureQueriesContext(connection) as queries:
        assert post_webhook(Client(), webhook, execute_on_commit=False).status_code == 200
    on_conflict = any("ON CONFLICT" in q["sql"] for q in queries.captured_queries)
    assert on_conflict is (statement_path == "sql")


@pytest.mark.parametrize("lookup", ["id", "remote_id", "uuid"])
def test_locked_task_has_every_column_as_the_orm_reads_it(lookup) -> None:
    task = full_task()
    value = {"id": task.pk, "remote_id": task.remote_id, "uuid": task.uuid}[lookup]
    with transaction.atomic():
        locked = statements.lock_task(lookup, value)
    assert locked is not None
    assert columns(locked) == columns(Task.objects.get(pk=task.pk))
    assert isinstance(locked.uuid, uuid.UUID)
    assert locked.started_at == _WHEN
    assert not locked._state.adding
    with transaction.atomic():
        assert (
            statements.lock_task(lookup, {"id": 0, "remote_id": "nope"}.get(lookup, uuid.uuid4()))
            is None
        )


def test_saved_fields_read_back_as_written() -> None:
    task = full_task()
    before = task.updated_at
    task.status = Status.SUCCEEDED
    task.output = {"url": "https://cdn.test/b.mp4", "quote": 'it\'s "fine"'}
    task.error = None
    task.finished_at = _WHEN
    statements.save_task(task, ["status", "output", "error", "finished_at"])
    stored = Task.objects.get(pk=task.pk)
    assert columns(stored) == columns(task)
    assert stored.updated_at > before
    assert stored.error is None  # JSON null stored as SQL NULL, as the ORM does


def test_a_field_listed_twice_is_written_once() -> None:
    """merge() can change ``progress`` twice (it grew, then success sets 100); PostgreSQL
    refuses ``SET progress = …, progress = …``."""
    task = full_task()
    task.progress = 100
    statements.save_task(task, ["progress", "progress"])
    assert Task.objects.get(pk=task.pk).progress == 100


def test_success_with_a_smaller_progress_on_a_pending_task(client) -> None:
    task = full_task(status=Status.PENDING, progress=None, started_at=None)
    webhook = build_webhook(task, "succeeded", progress=40)
    assert post_webhook(client, webhook).status_code == 200
    task.refresh_from_db()
    assert (task.status, task.progress) == (Status.SUCCEEDED, 100)


def test_hosts_post_save_receivers_still_fire(client) -> None:
    task = full_task(status=Status.PENDING)
    seen: list[tuple[int, frozenset[str] | None]] = []

    def receiver(sender: type, instance: Task, update_fields: Any, **kwargs: Any) -> None:
        seen.append((instance.pk, update_fields))

    post_save.connect(receiver, sender=Task, weak=False)
    try:
        assert post_webhook(client, build_webhook(task, "succeeded")).status_code == 200
    finally:
        post_save.disconnect(receiver, sender=Task)
    assert len(seen) == 1
    assert seen[0][0] == task.pk
    assert {"status", "output", "updated_at"} <= set(seen[0][1] or ())


def test_event_insert_matches_by_remote_id_then_correlation_and_refuses_a_repeat() -> None:
    task = full_task(remote_id="task_m")
    other = Task.objects.create(kind="image", input="https://x.test/b", backend="dummy")

    def row(key: str) -> dict[str, Any]:
        return {
            "dedup_key": key,
            "event_id": "",
            "topic": "task.updated",
            "source": "webhook",
            "remote_task_id": "task_m",
            "raw_status": "succeeded",
            "body": '{"ü": 1}',
            "headers": {"user-agent": "x"},
            "signature_scheme": "ittybit",
            "first_received_at": _WHEN,
            "last_received_at": _WHEN,
            "delivery_count": 1,
            "processed_at": _WHEN,
            "error": "",
        }

    with transaction.atomic():
        by_id = statements.insert_event(row("a"), remote_id="task_m", correlation=other.uuid)
        by_key = statements.insert_event(row("b"), remote_id="task_x", correlation=other.uuid)
        neither = statements.insert_event(row("c"), remote_id="task_x", correlation=None)
        repeat = statements.insert_event(row("a"), remote_id="task_m", correlation=None)
    matched = [None if r is None else r[1] for r in (by_id, by_key, neither, repeat)]
    # The remote id wins over the key; a repeat of a dedup key inserts nothing.
    assert matched == [task.pk, other.pk, None, None]
    assert (neither is not None, repeat) == (True, None)
    assert by_id is not None
    stored = WebhookEvent.objects.get(pk=by_id[0])
    assert (stored.body, stored.headers, stored.processed_at) == (
        '{"ü": 1}',
        {"user-agent": "x"},
        _WHEN,
    )
    assert WebhookEvent.objects.count() == 3
    assert statements.count_repeat("a", _WHEN) is True
    assert statements.count_repeat("missing", _WHEN) is False
    assert WebhookEvent.objects.get(dedup_key="a").delivery_count == 2


def test_submission_steps_and_conditional_update() -> None:
    task = full_task()
    sub = task.submission
    assert sub is not None
    with transaction.atomic():
        locked = statements.lock_submission(sub.pk)
        steps = statements.steps(sub.pk, sub.file_generation)
    if connection.features.has_select_for_update:
        assert locked == (sub.status, sub.file_generation)
    else:
        assert locked is None
    assert sorted(steps) == sorted(
        Task.objects.filter(submission=sub).values_list("is_primary", "status")
    )
    assert all(isinstance(primary, bool) for primary, _ in steps)
    assert statements.update_submission(sub.pk, sub.file_generation, "ready", done=True) == 1
    assert statements.update_submission(sub.pk, sub.file_generation, "ready", done=True) == 0
    assert statements.update_submission(sub.pk, sub.file_generation + 1, "failed", done=True) == 0
    stored = Submission.objects.get(pk=sub.pk)
    assert (stored.status, stored.processed_at is not None) == ("ready", True)
