"""reconcile.apply: the one function that lets a remote report change a Task."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapestry_media import reconcile
from tapestry_media.models import Submission, Task
from tapestry_media.remote import parse_task
from tapestry_media.status import _RANK, TERMINAL, Status

from .helpers import video_upload

pytestmark = pytest.mark.django_db


def make_task(**fields: Any) -> Task:
    fields.setdefault("kind", "video")
    fields.setdefault("input", "https://x.test/a.mov")
    fields.setdefault("backend", "dummy")
    fields.setdefault("status", Status.PENDING)
    task = Task(**fields)
    task.metadata = {"tapestry_task": str(task.uuid), "user_id": "usr_1", **task.metadata}
    task.save()
    return task


def report(remote_id: str, status: str, **fields: Any) -> Any:
    return parse_task({"id": remote_id, "status": status, **fields})


def apply(remote: Any, **kwargs: Any) -> reconcile.Outcome:
    return reconcile.apply(remote, source=kwargs.pop("source", "webhook"), **kwargs)


def test_found_by_remote_id() -> None:
    task = make_task(remote_id="task_1")
    outcome = apply(report("task_1", "processing", progress=12))
    assert (outcome.task.pk, outcome.changed, outcome.reason) == (task.pk, True, "applied")
    task.refresh_from_db()
    assert (task.status, task.progress, task.raw_status) == (Status.PROCESSING, 12, "processing")
    assert task.started_at is not None


def test_found_by_the_correlation_key_and_learns_its_remote_id() -> None:
    task = make_task(status=Status.SUBMITTING)
    outcome = apply(report("task_early", "succeeded", metadata=task.metadata))
    assert outcome.reason == "applied"
    task.refresh_from_db()
    assert (task.remote_id, task.status) == ("task_early", Status.SUCCEEDED)


@pytest.mark.parametrize("metadata", [{}, {"tapestry_task": "not-a-uuid"}, {"other": "x"}])
def test_unmatched(metadata: dict[str, str]) -> None:
    make_task(remote_id="task_known")
    outcome = apply(report("task_unknown", "succeeded", metadata=metadata))
    assert (outcome.task, outcome.matched, outcome.reason) == (None, False, "unmatched")
    assert Task.objects.get().status == Status.PENDING


def test_correlation_key_setting_is_honoured(settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "CORRELATION_KEY": "ref"}
    task = make_task()
    assert apply(report("task_x", "processing", metadata={"ref": str(task.uuid)})).matched
    assert not apply(report("task_y", "processing", metadata={"tapestry_task": "x"})).matched


@pytest.mark.parametrize(
    ("current", "reported", "changes"),
    [
        (Status.CREATED, "pending", True),
        (Status.SUBMITTING, "processing", True),
        (Status.PENDING, "processing", True),
        (Status.PENDING, "succeeded", True),
        (Status.PROCESSING, "failed", True),
        (Status.PROCESSING, "pending", False),
        (Status.SUCCEEDED, "processing", False),
        (Status.SUCCEEDED, "failed", False),
        (Status.FAILED, "succeeded", False),
        (Status.CANCELLED, "succeeded", False),
    ],
)
def test_status_only_moves_forward(current: Status, reported: str, changes: bool) -> None:
    task = make_task(remote_id="task_1", status=current)
    outcome = apply(report("task_1", reported))
    assert outcome.changed is changes
    task.refresh_from_db()
    expected = reported if changes else current
    assert task.status == {"canceled": "cancelled"}.get(expected, expected)


def test_progress_only_grows_and_is_100_on_success() -> None:
    task = make_task(remote_id="task_1", status=Status.PROCESSING, progress=50)
    assert apply(report("task_1", "processing", progress=30)).changed is False
    assert apply(report("task_1", "processing", progress=70)).changed is True
    task.refresh_from_db()
    assert task.progress == 70
    apply(report("task_1", "succeeded"))
    task.refresh_from_db()
    assert task.progress == 100


def test_success_stores_output_times_and_clears_the_error() -> None:
    task = make_task(remote_id="task_1", error={"kind": "old", "message": "transient"})
    outcome = apply(
        report(
            "task_1",
            "completed",
            outputs=[{"url": "https://cdn.x/a.mp4", "width": 1280}, {"url": "https://cdn.x/b"}],
            started_at="2026-01-01T10:00:00Z",
            finished_at=1767261660000,  # Unix milliseconds
        )
    )
    assert outcome.changed
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    assert task.output_url == "https://cdn.x/a.mp4"
    assert task.output[0]["width"] == 1280
    assert task.error is None
    assert task.started_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert task.finished_at == datetime(2026, 1, 1, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "stored"),
    [
        ("decoder exploded", {"kind": "", "message": "decoder exploded"}),
        ({"kind": "input_invalid", "message": "no video"}, {"kind": "input_invalid",
                                                           "message": "no video"}),
        (None, {"kind": "error", "message": "no reason given"}),
    ],
)  # fmt: skip
def test_failure_stores_the_error(error: Any, stored: dict[str, str]) -> None:
    task = make_task(remote_id="task_1")
    apply(report("task_1", "error", error=error))
    task.refresh_from_db()
    assert (task.status, task.error) == (Status.FAILED, stored)
    assert task.finished_at is not None


def test_unknown_status_keeps_the_raw_text_and_logs(caplog) -> None:
    task = make_task(remote_id="task_1")
    with caplog.at_level(logging.WARNING, logger="tapestry_media.reconcile"):
        outcome = apply(report("task_1", "teleporting"))
    assert outcome.changed
    task.refresh_from_db()
    assert (task.status, task.raw_status) == (Status.PENDING, "teleporting")
    assert "teleporting" in caplog.text
    assert apply(report("task_1", "teleporting")).reason == "unknown_status"


def test_old_attempt_is_ignored() -> None:
    task = make_task(
        remote_id="task_new", attempt=2, attempts=[{"attempt": 1, "remote_id": "task_old"}]
    )
    outcome = apply(report("task_old", "succeeded", metadata=task.metadata))
    assert (outcome.task.pk, outcome.changed, outcome.reason) == (task.pk, False, "old_attempt")
    # also while the new attempt has no remote id yet
    Task.objects.filter(pk=task.pk).update(remote_id=None, status=Status.CREATED)
    assert apply(report("task_old", "succeeded", metadata=task.metadata)).reason == "old_attempt"
    assert Task.objects.get(pk=task.pk).status == Status.CREATED


def test_report_for_another_remote_task_with_our_key_is_ignored(caplog) -> None:
    task = make_task(remote_id="task_mine")
    outcome = apply(report("task_stranger", "succeeded", metadata=task.metadata))
    assert outcome.reason == "remote_id_mismatch"
    assert Task.objects.get(pk=task.pk).status == Status.PENDING


def test_superseded_task_is_left_alone() -> None:
    task = make_task(remote_id="task_1", status=Status.SUPERSEDED)
    assert apply(report("task_1", "succeeded")).reason == "superseded"
    assert Task.objects.get(pk=task.pk).output is None


def test_echoed_metadata_is_never_trusted(caplog) -> None:
    task = make_task(remote_id="task_1")
    forged = {**task.metadata, "user_id": "usr_attacker"}
    with caplog.at_level(logging.WARNING, logger="tapestry_media.reconcile"):
        assert apply(report("task_1", "succeeded", metadata=forged)).changed
    task.refresh_from_db()
    assert task.metadata["user_id"] == "usr_1"
    assert "user_id" in caplog.text


def test_task_pk_pins_the_task_and_checks_the_remote_id() -> None:
    task = make_task(remote_id="task_1")
    other = make_task(remote_id="task_2")
    assert apply(report("task_1", "processing"), task_pk=task.pk, source="poll").changed
    assert apply(report("task_1", "succeeded"), task_pk=other.pk).reason == "remote_id_mismatch"
    assert Task.objects.get(pk=other.pk).status == Status.PENDING


def test_the_submission_aggregate_follows() -> None:
    submission = Submission.objects.create(file=video_upload())
    submission.tasks.filter(name="video").update(remote_id="t_v", status=Status.PENDING)
    submission.tasks.filter(name="poster").update(remote_id="t_p", status=Status.PENDING)
    apply(report("t_v", "succeeded"))
    submission.refresh_from_db()
    assert submission.status == "processing"
    apply(report("t_p", "failed"))
    submission.refresh_from_db()
    assert submission.status == "partial"
    assert submission.processed_at is not None


STATUSES = ["pending", "queued", "processing", "running", "succeeded", "failed", "canceled",
            "mystery"]  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=8))
def test_any_order_of_reports_only_moves_forward(sequence: list[str]) -> None:
    task = make_task(remote_id=f"task_h_{Task.objects.count()}")
    seen_terminal: Status | None = None
    rank = _RANK[Status.PENDING]
    for raw in sequence:
        apply(report(task.remote_id, raw))
        status = Status(Task.objects.values_list("status", flat=True).get(pk=task.pk))
        assert _RANK[status] >= rank
        rank = _RANK[status]
        if seen_terminal is not None:
            assert status == seen_terminal  # terminal is sticky
        if status in TERMINAL:
            seen_terminal = status
    first_terminal = next((s for s in sequence if s in ("succeeded", "failed", "canceled")), None)
    final = Task.objects.get(pk=task.pk).status
    if first_terminal is not None:
        assert final == {"canceled": "cancelled"}.get(first_terminal, first_terminal)
