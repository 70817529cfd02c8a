"""A submission's status, derived from the tasks of its current file generation."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections, router
from django.utils import timezone

from .models import Submission, SubmissionStatus, Task
from .signals import send_after_commit, submission_processed
from .status import TERMINAL, Status


def aggregate(steps: Iterable[tuple[bool, str]]) -> SubmissionStatus:
    """``steps`` are ``(is_primary, status)`` pairs of the current generation's tasks."""
    rows = list(steps)
    if not rows:
        return SubmissionStatus.PENDING
    primary = [status for is_primary, status in rows if is_primary]
    if primary and primary[0] in TERMINAL and primary[0] != Status.SUCCEEDED:
        return SubmissionStatus.FAILED
    if all(status in TERMINAL for _, status in rows):
        if all(status == Status.SUCCEEDED for _, status in rows):
            return SubmissionStatus.READY
        return SubmissionStatus.PARTIAL if primary else SubmissionStatus.FAILED
    if any(status not in (Status.CREATED, Status.SUBMITTING, Status.PENDING) for _, status in rows):
        return SubmissionStatus.PROCESSING
    return SubmissionStatus.PENDING


#: What ``aggregate`` sees of a step besides ``is_primary``: a task moving inside one of these
#: groups (created -> submitting -> pending, or failed -> cancelled) cannot change its
#: submission's status, so the caller skips ``refresh`` and its lock.
_WAITING = frozenset({Status.CREATED, Status.SUBMITTING, Status.PENDING})


def step_class(status: str) -> str:
    if status in _WAITING:
        return "waiting"
    if status == Status.SUCCEEDED:
        return "succeeded"
    return "ended" if status in TERMINAL else "running"


def may_change(before: str, after: str) -> bool:
    """Whether a task's move from ``before`` to ``after`` can change its submission's status."""
    return step_class(before) != step_class(after)


def refresh(submission_id: int, generation: int) -> SubmissionStatus:
    """Recompute and store the aggregate for ``generation`` (the changed task's): one query to
    read the steps, one conditional update that does nothing when the status is unchanged or the
    generation is no longer current. Call inside the transaction that changed the task; the
    ``submission_processed`` signal goes out after commit.

    Where the database has row locks, the submission's row is locked first (one more query):
    two tasks of one submission finishing at once would otherwise each read the other as
    unfinished (write skew under READ COMMITTED) and leave the submission ``processing`` for
    good. The second to take the lock reads the first one's committed task. The lock also
    reads the current status, so an unchanged aggregate costs no UPDATE. Callers hold the
    task's lock already: task, then submission, is the one lock order."""
    alias = router.db_for_write(Submission)
    submissions = Submission.objects.using(alias).filter(pk=submission_id)
    locked = None
    if connections[alias].features.has_select_for_update:
        rows = submissions.select_for_update().order_by().values_list("status", "file_generation")
        locked = next(iter(rows), None)  # the pk matches one row at most
        if locked is not None and locked[1] != generation:
            return SubmissionStatus(locked[0])  # a newer file replaced this generation
    steps = Task.objects.using(alias).filter(submission_id=submission_id, generation=generation)
    new = aggregate(steps.order_by().values_list("is_primary", "status"))
    if locked is not None and locked[0] == new:
        return new
    done = new in (SubmissionStatus.READY, SubmissionStatus.PARTIAL, SubmissionStatus.FAILED)
    now = timezone.now()
    # Under the lock this generation is current and the status differs: the pk is condition
    # enough. Without row locks the UPDATE checks both itself.
    target = submissions
    if locked is None:
        target = submissions.filter(file_generation=generation).exclude(status=new)
    changed = target.update(status=new, processed_at=now if done else None, updated_at=now)
    if changed and done and submission_processed.has_listeners(Submission):
        send_after_commit(
            submission_processed,
            Submission,
            submission=submissions.get(),
            status=new,
        )
    return new
