"""Apply one remote report (a webhook, a polled state, the local engine, a create reply) to
one Task: the only place a remote report changes a Task.

:func:`apply` runs one transaction on the database the router gives these models:

1. find the task (:func:`find_task`: by remote id, else by the correlation key echoed in the
   metadata) and lock its row — first, before anything that points at it is written;
2. store the event row, when the report came with a new one (no savepoint: a repeat's
   ``IntegrityError`` ends the transaction, and the caller counts the repeat);
3. merge the report into the task, forward only, and save it (``Task.save``);
4. refresh the submission's aggregate status (it locks the submission row: task, then
   submission, everywhere);
5. mark a stored event processed;

and host signals go out after commit. A report for an older attempt or a superseded task is
recorded and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import aggregate
from .conf import get_settings
from .database import retry_on_conflict
from .links import drop_unsafe_links, is_safe_link
from .models import Task, WebhookEvent
from .remote import RemoteTask
from .signals import send_after_commit, task_failed, task_submitted, task_succeeded, task_updated
from .status import TERMINAL, Status, can_apply_remote

logger = logging.getLogger("tapestry_media.reconcile")

#: ``source`` of a create call's reply (no event is stored for it).
SUBMIT = "submit"

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
    remote: RemoteTask,
    *,
    source: str,
    event: WebhookEvent | None = None,
    scope: str | None = None,
    task_pk: int | None = None,
) -> Outcome:
    """Apply ``remote`` in one transaction (a savepoint inside the caller's).

    ``event``: an unsaved :class:`WebhookEvent` is inserted with the task it matched (an
    ``IntegrityError`` then means its dedup key is taken: a repeat, and nothing was written);
    a stored one is marked processed. ``scope`` (a backend name, from a scoped webhook key)
    restricts the match to that backend's tasks. ``task_pk`` names the task outright (a poll,
    a create reply, a stored event matched late); its scope is still checked.

    A deadlock or serialization failure is retried here, when this is the outermost
    transaction; anything else propagates with nothing written.
    """
    alias = router.db_for_write(Task)
    stored = event is not None and not event._state.adding

    def attempt() -> Outcome:
        with transaction.atomic(using=alias):
            return _apply_in_transaction(remote, source, event, stored, scope, task_pk, alias)

    if transaction.get_connection(alias).in_atomic_block:
        return attempt()
    return retry_on_conflict(attempt, alias=alias)


def _apply_in_transaction(
    remote: RemoteTask,
    source: str,
    event: WebhookEvent | None,
    stored: bool,
    scope: str | None,
    task_pk: int | None,
    alias: str,
) -> Outcome:
    task = find_task(remote, scope=scope, task_pk=task_pk, using=alias)
    if event is not None and not stored:
        event.pk = None  # an earlier attempt's insert was rolled back with it
        event.task = task
        event.processed_at = timezone.now()
        event.save(force_insert=True, using=alias)
    if task is None:
        outcome = Outcome(None, False, "unmatched")
    elif source == SUBMIT:
        outcome = _take_reply(task, remote)
    else:
        outcome = _apply_locked(task, remote, source=source)
    if event is not None and stored:
        _mark_processed(event, outcome, alias)
    return outcome


def find_task(
    remote: RemoteTask, *, scope: str | None = None, task_pk: int | None = None, using: str
) -> Task | None:
    """The task ``remote`` reports on, locked for the rest of the transaction where the
    database has row locks: the one named by ``task_pk``; else the one with ``remote.id``;
    else the one whose correlation key ``remote`` echoes. With a ``scope`` only that
    backend's tasks match."""
    tasks: QuerySet[Task] = Task.objects.using(using).select_for_update().order_by()
    if scope is not None:
        tasks = tasks.filter(backend=scope)
    if task_pk is not None:
        return tasks.filter(pk=task_pk).first()
    found = tasks.filter(remote_id=remote.id).first()
    if found is not None:
        return found
    correlation = correlation_of(remote)
    return None if correlation is None else tasks.filter(uuid=correlation).first()


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
    _save(task, changed, previous, source)
    return Outcome(task, True, "applied")


def _take_reply(task: Task, remote: RemoteTask) -> Outcome:
    """The create call's reply: the task is submitted (``submitting`` → ``pending``), learns
    its remote id, and takes whatever state the reply already reports."""
    previous = task.status
    task.submitted_at = timezone.now()
    changed = ["submitted_at"]
    if task.status == Status.SUBMITTING:
        task.status = Status.PENDING
        task.raw_status = remote.raw_status[:RAW_STATUS_LENGTH]
        task.error = None
        changed += ["status", "raw_status", "error"]
    if task.status == Status.SUPERSEDED and not task.remote_id:
        task.remote_id = remote.id  # so a later report for it is matched, and ignored
        changed.append("remote_id")
    changed += merge(task, remote)
    send_after_commit(task_submitted, Task, task=task)
    _save(task, changed, previous, SUBMIT, notify=task.status != previous)
    return Outcome(task, True, "submitted")


def _save(
    task: Task, changed: list[str], previous: str, source: str, *, notify: bool = True
) -> None:
    """Store the changed fields (``updated_at`` with them: ``auto_now``), send the signals
    after commit and, when the move can change the submission's status, refresh it (a create
    reply's submitting -> pending cannot: no submission lock, no steps read)."""
    task.save(update_fields=sorted({*changed, "updated_at"}))
    if notify:  # registered first, so the task's signals go out before ``submission_processed``
        send_signals(task, previous, source)
    if task.submission_id is not None and aggregate.may_change(previous, task.status):
        aggregate.refresh(task.submission_id, task.generation)


def _mark_processed(event: WebhookEvent, outcome: Outcome, alias: str) -> None:
    fields: dict[str, object] = {"processed_at": timezone.now(), "error": ""}
    # An unmatched outcome leaves ``task`` alone: the event may have been matched meanwhile.
    if outcome.task is not None:
        fields["task"] = outcome.task
    WebhookEvent.objects.using(alias).filter(pk=event.pk).update(**fields)


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
