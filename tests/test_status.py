"""The state machine, exhaustively: every (current, reported) pair, and each local move the
app's code makes, from every status."""

from __future__ import annotations

import itertools

import pytest

from tapestry_media.models import Submission, Task
from tapestry_media.pipeline import start_new_attempt, supersede_old_generations
from tapestry_media.status import REMOTE, TERMINAL, Status, can_apply_remote, normalize

from .helpers import upload

ORDER = [Status.CREATED, Status.SUBMITTING, Status.PENDING, Status.PROCESSING]


def expected_remote(current: Status, reported: Status) -> bool:
    if current in TERMINAL or reported not in REMOTE:
        return False
    if reported in TERMINAL:
        return True
    return ORDER.index(reported) > ORDER.index(current)


@pytest.mark.parametrize(("current", "reported"), list(itertools.product(Status, Status)))
def test_remote_reports_only_move_forward(current: Status, reported: Status) -> None:
    assert can_apply_remote(current, reported) is expected_remote(current, reported)


@pytest.mark.parametrize("current", list(Status))
def test_unknown_status_never_moves(current: Status) -> None:
    assert can_apply_remote(current, None) is False


def test_late_processing_never_overwrites_succeeded() -> None:
    assert not can_apply_remote(Status.SUCCEEDED, Status.PROCESSING)
    assert not can_apply_remote(Status.SUCCEEDED, Status.FAILED)
    assert can_apply_remote(Status.PROCESSING, Status.SUCCEEDED)  # positive control


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", Status.PENDING),
        ("waiting", Status.PENDING),
        ("queued", Status.PENDING),
        ("validating", Status.PENDING),
        ("processing", Status.PROCESSING),
        ("finishing", Status.PROCESSING),
        ("running", Status.PROCESSING),
        ("succeeded", Status.SUCCEEDED),
        ("completed", Status.SUCCEEDED),
        ("ready", Status.SUCCEEDED),
        ("failed", Status.FAILED),
        ("error", Status.FAILED),
        ("cancelled", Status.CANCELLED),
        ("canceled", Status.CANCELLED),
        (" Succeeded ", Status.SUCCEEDED),
        ("exploded", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalize(raw: object, expected: Status | None) -> None:
    assert normalize(raw) == expected


# --- local moves: the code that makes them, from every status ----------------------------------

UNFINISHED = {Status.CREATED, Status.SUBMITTING, Status.PENDING, Status.PROCESSING}


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(Status))
def test_a_newer_file_supersedes_exactly_the_unfinished_tasks(status: Status) -> None:
    sub = upload()
    Task.objects.filter(submission=sub).update(status=status)
    Submission.objects.filter(pk=sub.pk).update(file_generation=sub.file_generation + 1)
    sub.refresh_from_db()

    moved = supersede_old_generations(sub)

    expected = Status.SUPERSEDED if status in UNFINISHED else status
    assert set(sub.tasks.values_list("status", flat=True)) == {expected}
    assert moved == (2 if status in UNFINISHED else 0)


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(Status))
def test_only_a_failed_or_cancelled_task_starts_a_new_attempt(status: Status) -> None:
    task = Task.objects.create(
        kind="video", input="https://x.test/a.mov", backend="dummy", status=status, remote_id="t1"
    )

    retried = start_new_attempt(task.pk)

    task.refresh_from_db()
    assert retried is (status in {Status.FAILED, Status.CANCELLED})
    expected = (Status.CREATED, 2, None) if retried else (status, 1, "t1")
    assert (task.status, task.attempt, task.remote_id) == expected
