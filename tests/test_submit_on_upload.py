"""An upload becomes tasks tagged with metadata and is submitted once, after commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tapestry_media.backends import PermanentBackendError, TransientBackendError
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.models import Submission, Task
from tapestry_media.pipeline import start_new_attempt
from tapestry_media.status import Status
from tapestry_media.testing.jobs import enqueued, enqueued_names, run_jobs

from .helpers import app_alias, upload, video_upload

pytestmark = pytest.mark.django_db


def time_passes() -> None:
    """Make every backoff due, as a worker would see it later."""
    Task.objects.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def run_until_settled() -> None:
    for _ in range(20):
        run_jobs()
        if not enqueued():
            return
        time_passes()
        run_jobs(include_deferred=True)


def test_new_upload_submits_each_step_once(user, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload(user)
    assert enqueued_names() == ["submit_task", "submit_task"]
    run_jobs()

    calls = DummyBackend.calls
    assert sorted(c.spec.kind for c in calls) == ["image", "video"]
    video = next(c for c in calls if c.spec.kind == "video")
    assert video.spec.options == {"width": 1280, "height": 1280, "fit": "contain", "format": "mp4"}
    assert video.spec.input == f"https://tapestry-app.com/media/{sub.file.name}"
    task = sub.tasks.get(name="video")
    assert video.spec.metadata == {
        "submission_id": sub.public_id,
        "user_id": f"usr_{user.pk}",
        "campaign": "summer-launch",
        "source": "ios",
        "tapestry_task": str(task.uuid),
    }
    assert task.status == Status.PENDING
    assert task.remote_id == f"task_dummy_{task.idempotency_key}"
    assert task.is_primary
    assert not sub.tasks.get(name="poster").is_primary
    # running the queue again submits nothing more
    run_jobs()
    assert len(DummyBackend.calls) == 2


def test_saving_again_without_a_new_file_submits_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as first:
        sub = upload()
    assert len(first) == 2  # positive control: the first save did enqueue
    run_jobs()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sub = Submission.objects.get(pk=sub.pk)
        sub.title = "renamed"
        sub.save()
    assert callbacks == []
    assert enqueued() == []
    assert Task.objects.count() == 2


def test_deferred_file_field_is_compared_with_the_database(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload()
    run_jobs()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        partial = Submission.objects.defer("file").get(pk=sub.pk)
        partial.title = "x"
        partial.save()
    assert callbacks == []
    assert Task.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_rolled_back_save_submits_nothing() -> None:
    inside: list[int] = []

    def save_then_fail() -> None:
        with transaction.atomic(using=app_alias()):
            upload()
            inside.append(Task.objects.count())
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert inside == [2]  # the rows existed inside the transaction
    assert enqueued() == []
    assert Task.objects.count() == 0
    upload()  # positive control: the same save, committed, enqueues
    assert enqueued_names() == ["submit_task", "submit_task"]


def test_new_file_supersedes_unfinished_tasks(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload()
    run_jobs()
    old = list(sub.tasks.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        sub.file = video_upload("second.mp4")
        sub.save()
    sub.refresh_from_db()
    assert sub.file_generation == 1
    assert set(Task.objects.filter(pk__in=old).values_list("status", flat=True)) == {
        Status.SUPERSEDED
    }
    current = sub.current_tasks()
    assert sorted(current.values_list("name", flat=True)) == ["poster", "video"]
    assert set(current.values_list("status", flat=True)) == {Status.CREATED}
    run_jobs()
    assert len(DummyBackend.calls) == 4
    assert set(current.values_list("status", flat=True)) == {Status.PENDING}


def test_transient_failure_is_retried_with_the_same_key(django_capture_on_commit_callbacks):
    DummyBackend.failures = [TransientBackendError("503 from API", status_code=503)]
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload(campaign="")
    run_jobs()
    video = sub.tasks.get(name="video")
    first_call = DummyBackend.calls[0]
    failed_name = first_call.spec.kind
    failed = sub.tasks.get(kind=failed_name)
    assert failed.status == Status.CREATED
    assert failed.retries == 1
    assert failed.error["message"] == "503 from API"
    assert enqueued()[0].task.run_after == failed.next_attempt_at  # deferred re-enqueue
    run_jobs(include_deferred=True)  # too early: the claim refuses before the backoff ends
    failed.refresh_from_db()
    assert failed.status == Status.CREATED
    assert len(DummyBackend.calls) == 2
    DummyBackend.calls.clear()
    from tapestry_media.enqueue import enqueue_submit

    enqueue_submit(failed.pk)
    time_passes()
    run_jobs()
    failed.refresh_from_db()
    assert failed.status == Status.PENDING
    retry_calls = [first_call, *DummyBackend.calls]
    assert [c.idempotency_key for c in retry_calls] == [failed.idempotency_key] * 2
    assert failed.attempt == 1
    assert failed.error is None
    assert video.pk in Task.objects.values_list("pk", flat=True)


def test_final_failure_ends_failed_with_the_reason(django_capture_on_commit_callbacks) -> None:
    DummyBackend.failures = [
        PermanentBackendError("input is not a video", kind="request_invalid", status_code=422)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload()
    run_jobs()
    failed = Task.objects.get(kind=DummyBackend.calls[0].spec.kind)
    assert failed.status == Status.FAILED
    assert failed.error == {
        "kind": "request_invalid",
        "message": "input is not a video",
        "status_code": "422",
    }
    assert enqueued() == []  # not retried
    sub.refresh_from_db()
    assert sub.status in ("failed", "pending", "processing")


def test_retries_give_up_after_the_limit(settings, django_capture_on_commit_callbacks):
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "SUBMIT_MAX_RETRIES": 2}
    DummyBackend.failures = [TransientBackendError("timeout")] * 3
    with django_capture_on_commit_callbacks(execute=True):
        task = Task.objects.create(kind="video", input="https://x.test/a.mov", backend="dummy")
        from tapestry_media.pipeline import enqueue_after_commit

        enqueue_after_commit(task)
    run_until_settled()
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error["message"] == "gave up after 2 retries: timeout"
    assert len(DummyBackend.calls) == 3


def test_deliberate_retry_is_a_new_attempt_with_a_new_key(django_capture_on_commit_callbacks):
    DummyBackend.failures = [PermanentBackendError("bad input", status_code=400)]
    with django_capture_on_commit_callbacks(execute=True):
        task = Task.objects.create(kind="video", input="https://x.test/a.mov", backend="dummy")
        from tapestry_media.pipeline import enqueue_after_commit

        enqueue_after_commit(task)
    run_jobs()
    task.refresh_from_db()
    old_key = task.idempotency_key
    assert task.status == Status.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        assert start_new_attempt(task.pk) is True
    run_jobs()
    task.refresh_from_db()
    assert task.attempt == 2
    assert task.status == Status.PENDING
    assert DummyBackend.calls[-1].idempotency_key == task.idempotency_key != old_key
    assert task.attempts[0]["attempt"] == 1
    assert task.attempts[0]["error"]["message"] == "bad input"
    assert start_new_attempt(task.pk) is False  # a pending task is not retried


@pytest.mark.django_db(transaction=True)
def test_backend_is_called_with_no_open_transaction() -> None:
    seen: list[bool] = []
    DummyBackend.on_create = lambda spec, rid: seen.append(connection.in_atomic_block)
    upload()  # committed: on_commit fires and the jobs are enqueued
    run_jobs()
    assert seen == [False, False]


def test_server_owned_metadata_cannot_be_spoofed(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload(
            user,
            metadata={
                "user_id": "usr_attacker",
                "submission_id": "sub_other",
                "tapestry_task": "00000000-0000-0000-0000-000000000000",
                "order_id": "ord_1",
            },
        )
    for task in sub.tasks.all():
        assert task.metadata["user_id"] == f"usr_{user.pk}"
        assert task.metadata["submission_id"] == sub.public_id
        assert task.metadata["tapestry_task"] == str(task.uuid)
        assert task.metadata["order_id"] == "ord_1"  # the user's own keys do pass


def test_upload_save_makes_no_network_call_and_a_fixed_number_of_queries(
    no_network, django_capture_on_commit_callbacks
) -> None:
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as cbs:
        upload()
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # INSERT the submission, INSERT both tasks in one statement.
    assert statements == ["INSERT", "INSERT"], statements
    assert len(cbs) == 2


def test_a_reply_that_is_already_finished_sends_the_terminal_signals(
    django_capture_on_commit_callbacks,
) -> None:
    """An idempotent replay of a task that already finished answers 'succeeded' at once."""
    from tapestry_media.remote import RemoteTask
    from tapestry_media.signals import submission_processed, task_succeeded, task_updated

    sent: list[str] = []

    def finished_reply(spec, remote_id) -> None:
        DummyBackend.tasks[remote_id] = RemoteTask(
            id=remote_id, status=Status.SUCCEEDED, raw_status="succeeded",
            metadata=dict(spec.metadata), output={"url": "https://cdn.test/o"},
            output_url="https://cdn.test/o",
        )  # fmt: skip

    DummyBackend.on_create = finished_reply
    receivers = {
        task_updated: lambda sender, **kw: sent.append("updated"),
        task_succeeded: lambda sender, **kw: sent.append("succeeded"),
        submission_processed: lambda sender, **kw: sent.append(f"processed:{kw['status']}"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sub = upload()
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                run_jobs()
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)
    assert set(sub.tasks.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert sent == ["updated", "succeeded", "updated", "succeeded", "processed:ready"]


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_the_upload_row_and_its_tasks_leaves_nothing(monkeypatch) -> None:
    """In autocommit (no caller transaction) the upload and its tasks still commit together."""
    from tapestry_media import pipeline

    real = pipeline.create_tasks_for_upload

    def crash(submission):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(pipeline, "create_tasks_for_upload", crash)
    with pytest.raises(RuntimeError):
        upload()
    assert Submission.objects.count() == 0
    assert enqueued() == []
    monkeypatch.setattr(pipeline, "create_tasks_for_upload", real)  # positive control
    upload()
    assert Submission.objects.count() == 1
    assert Task.objects.count() == 2


def test_resubmit_supersedes_and_creates_a_new_generation(django_capture_on_commit_callbacks):
    from tapestry_media.uploads import resubmit

    with django_capture_on_commit_callbacks(execute=True):
        sub = upload()
    run_jobs()
    with django_capture_on_commit_callbacks(execute=True):
        assert resubmit(sub.pk) is True
    sub.refresh_from_db()
    assert sub.file_generation == 1
    assert set(sub.tasks.filter(generation=0).values_list("status", flat=True)) == {
        Status.SUPERSEDED
    }
    assert sub.current_tasks().count() == 2
    assert enqueued_names() == ["submit_task", "submit_task"]


def test_a_create_reply_with_an_overlong_raw_status_is_clipped_to_the_column(
    django_capture_on_commit_callbacks,
) -> None:
    """PostgreSQL enforces ``raw_status``'s 40 characters: an API status longer than that must
    not fail the submit job (it would be retried for ever)."""
    from tapestry_media.remote import RemoteTask

    def long_status(spec, remote_id) -> None:
        DummyBackend.tasks[remote_id] = RemoteTask(
            id=remote_id, status=None, raw_status="queued-" + "x" * 73, metadata=dict(spec.metadata)
        )

    DummyBackend.on_create = long_status
    with django_capture_on_commit_callbacks(execute=True):
        sub = upload()
    run_jobs()
    raw = set(sub.tasks.values_list("status", "raw_status"))
    assert raw == {(Status.PENDING, ("queued-" + "x" * 73)[:40])}
