"""Apply one remote report (a webhook, a polled state, the local engine, a create reply) to
one Task. The only place a remote report changes a Task.

Rules: find the task by remote id, else by the correlation key echoed in the metadata; lock
the row briefly; move its status only forward; a report for an older attempt or a superseded
task is recorded and ignored; host signals go out after commit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import aggregate, statements
from .conf import get_settings
from .links import drop_unsafe_links, is_safe_link
from .models import Task
from .remote import RemoteTask
from .signals import send_after_commit, task_failed, task_succeeded, task_updated
from .status import TERMINAL, Status, can_apply_remote

logger = logging.getLogger("tapestry_media.reconcile")

# Column sizes: a longer value from the API must not fail the update (PostgreSQL enforces them).
RAW_STATUS_LENGTH = Task._meta.get_field("raw_status").max_length or 40
_OUTPUT_URL_LENGTH = Task._meta.get_field("output_url").max_length or 2000


@dataclass(frozen=True)
class Outcome:
    """What applying a report did. ``task`` is ``None`` when no task matched."""

    task: Task | None
    changed: bool
    reason: str

    @property
    def matched(self) -> bool:
        return self.task is not None


def apply(
    remote: RemoteTask, *, source: str, task_pk: int | None = None, backend: str | None = None
) -> Outcome:
    """Apply ``remote`` in its own short transaction (or the caller's)."""
    with transaction.atomic():
        return apply_in_transaction(remote, source=source, task_pk=task_pk, backend=backend)


def apply_in_transaction(
    remote: RemoteTask, *, source: str, task_pk: int | None = None, backend: str | None = None
) -> Outcome:
    """:func:`apply` inside the caller's transaction (no savepoint of its own). With
    ``task_pk`` the task is taken by primary key, without looking at ids or metadata; with
    ``backend`` only a task of that backend matches (a scoped webhook key)."""
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("apply_in_transaction needs a transaction")
    task = _locked_task(remote, task_pk, backend)
    if task is None:
        return Outcome(None, False, "unmatched")
    return _apply_locked(task, remote, source=source)


def _locked_task(remote: RemoteTask, task_pk: int | None, backend: str | None) -> Task | None:
    if task_pk is not None:
        return statements.lock_task("id", task_pk, backend=backend)
    task = statements.lock_task("remote_id", remote.id, backend=backend)
    if task is not None:
        return task
    correlation = correlation_of(remote)
    if correlation is None:
        return None
    return statements.lock_task("uuid", correlation, backend=backend)


def correlation_of(remote: RemoteTask) -> uuid.UUID | None:
    value = remote.metadata.get(get_settings().CORRELATION_KEY)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        logger.warning("report for %s carries a malformed correlation key %r", remote.id, value)
        return None


def _apply_locked(task: Task, remote: RemoteTask, *, source: str) -> Outcome:
    if remote.id in task.known_remote_ids() and remote.id != task.remote_id:
        logger.info("ignoring a report for an earlier attempt of task %s (%s)", task.pk, remote.id)
        return Outcome(task, False, "old_attempt")
    if task.remote_id and task.remote_id != remote.id:
        logger.warning(
            "report for %s matched task %s by metadata, but the task's remote id is %s; ignored",
            remote.id,
            task.pk,
            task.remote_id,
        )
        return Outcome(task, False, "remote_id_mismatch")
    if task.status == Status.SUPERSEDED:
        return Outcome(task, False, "superseded")

    _warn_on_metadata_drift(task, remote)
    previous = task.status
    changed = merge(task, remote)
    if not changed:
        return Outcome(task, False, "stale" if remote.status else "unknown_status")
    statements.save_task(task, changed)
    # Registered first, so the task's signals go out before ``submission_processed``.
    send_signals(task, previous, source)
    if "status" in changed and task.submission_id is not None:
        aggregate.refresh(task.submission_id, task.generation)
    return Outcome(task, True, "applied")


def merge(task: Task, remote: RemoteTask) -> list[str]:
    """Copy what ``remote`` may change onto ``task``; return the changed field names.

    Nothing changes on a terminal task. The status only moves forward; progress only grows.
    """
    if task.status in TERMINAL:
        return []
    changed: list[str] = []

    def put(field: str, value: Any) -> None:
        if getattr(task, field) != value:
            setattr(task, field, value)
            changed.append(field)

    if not task.remote_id:
        put("remote_id", remote.id)
    moves = can_apply_remote(task.status, remote.status)
    if moves:
        assert remote.status is not None
        put("status", remote.status)
        put("raw_status", remote.raw_status[:RAW_STATUS_LENGTH])
        if remote.status == Status.PROCESSING or (
            remote.status in TERMINAL and not task.started_at
        ):
            put("started_at", remote.started_at or timezone.now())
        if remote.status in TERMINAL:
            put("finished_at", remote.finished_at or timezone.now())
    if remote.status is None and remote.raw_status != task.raw_status:
        logger.warning(
            "unknown remote status %r for task %s kept as raw text", remote.raw_status, task.pk
        )
        put("raw_status", remote.raw_status[:RAW_STATUS_LENGTH])
    grows = remote.progress is not None and (task.progress or -1) < remote.progress
    if grows and (moves or remote.status in (None, Status.PENDING, Status.PROCESSING)):
        put("progress", remote.progress)
    if moves and remote.status == Status.SUCCEEDED:
        put("progress", 100)
        if remote.output is not None:
            output, dropped = drop_unsafe_links(remote.output)
            if dropped:
                logger.warning("task %s: output links %r refused (not http(s))", task.pk, dropped)
            put("output", output)
        if len(remote.output_url) <= _OUTPUT_URL_LENGTH and is_safe_link(remote.output_url):
            put("output_url", remote.output_url)
        put("error", None)
    if moves and remote.status in (Status.FAILED, Status.CANCELLED):
        put("error", remote.error or {"kind": remote.raw_status, "message": "no reason given"})
    return changed


def _warn_on_metadata_drift(task: Task, remote: RemoteTask) -> None:
    if remote.metadata and remote.metadata != task.metadata:
        differing = sorted(
            k
            for k in set(remote.metadata) | set(task.metadata)
            if remote.metadata.get(k) != task.metadata.get(k)
        )
        logger.warning(
            "metadata echoed for task %s differs from what was sent (keys %s); keeping ours",
            task.pk,
            ", ".join(differing),
        )


def send_signals(task: Task, previous: str, source: str) -> None:
    """After commit: ``task_updated``, then ``task_succeeded``/``task_failed`` if the change
    reached that state. Register these before ``aggregate.refresh`` so a
    ``submission_processed`` it sends comes last."""
    send_after_commit(task_updated, Task, task=task, previous_status=previous, source=source)
    if task.status != previous and task.status == Status.SUCCEEDED:
        send_after_commit(task_succeeded, Task, task=task)
    elif task.status != previous and task.status in (Status.FAILED, Status.CANCELLED):
        send_after_commit(task_failed, Task, task=task, error=task.error or {})
