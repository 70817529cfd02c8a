"""The submission's aggregate status: the pure rule and what refreshing it costs."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tapestry_media import aggregate
from tapestry_media.models import Submission, SubmissionStatus, Task
from tapestry_media.status import Status

from .helpers import video_upload

S = Status


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], "pending"),
        ([(True, S.CREATED), (False, S.PENDING)], "pending"),
        ([(True, S.PROCESSING), (False, S.PENDING)], "processing"),
        ([(True, S.SUCCEEDED), (False, S.PENDING)], "processing"),
        ([(True, S.SUCCEEDED), (False, S.SUCCEEDED)], "ready"),
        ([(True, S.SUCCEEDED), (False, S.FAILED)], "partial"),
        ([(True, S.FAILED), (False, S.PENDING)], "failed"),
        ([(True, S.CANCELLED), (False, S.SUCCEEDED)], "failed"),
        ([(False, S.SUCCEEDED), (False, S.FAILED)], "failed"),  # no primary step: not partial
    ],
)
def test_aggregate_rule(steps, expected) -> None:
    assert aggregate.aggregate(steps) == expected


def submission_updates(queries: CaptureQueriesContext) -> int:
    table = connection.ops.quote_name(Submission._meta.db_table)
    return sum(q["sql"].startswith(f"UPDATE {table}") for q in queries.captured_queries)


@pytest.mark.server_db
@pytest.mark.django_db
def test_an_unchanged_aggregate_costs_no_update() -> None:
    sub = Submission.objects.create(file=video_upload())
    Task.objects.filter(submission=sub, name="video").update(status=S.PROCESSING)
    video = sub.tasks.get(name="video")
    with CaptureQueriesContext(connection) as changed:
        assert aggregate.refresh(sub.pk, video.generation) == SubmissionStatus.PROCESSING
    assert submission_updates(changed) == 1  # pending -> processing: stored
    with CaptureQueriesContext(connection) as unchanged:
        assert aggregate.refresh(sub.pk, video.generation) == SubmissionStatus.PROCESSING
    assert submission_updates(unchanged) == 0
    sub.refresh_from_db()
    assert sub.status == "processing"


def test_a_move_inside_a_step_class_never_changes_the_aggregate() -> None:
    """``reconcile`` skips the refresh (and the submission lock) when ``may_change`` says no:
    for every pair of statuses it calls alike and every set of up to two siblings, the rule
    gives the same answer with either status."""
    steps = list(itertools.product([True, False], Status))
    siblings = [[], *([s] for s in steps), *([a, b] for a, b in itertools.product(steps, repeat=2))]
    alike = 0
    for before, after in itertools.product(Status, repeat=2):
        if aggregate.may_change(before, after):
            continue
        alike += 1
        for is_primary in (True, False):
            for others in siblings:
                old = aggregate.aggregate([(is_primary, before), *others])
                new = aggregate.aggregate([(is_primary, after), *others])
                assert old == new, (before, after, is_primary, others)
    # Positive control: the classes are not one, and real changes are seen as such.
    assert aggregate.may_change(Status.PROCESSING, Status.SUCCEEDED)
    assert aggregate.may_change(Status.PENDING, Status.PROCESSING)
    assert not aggregate.may_change(Status.SUBMITTING, Status.PENDING)
    assert len(Status) < alike < len(Status) ** 2
