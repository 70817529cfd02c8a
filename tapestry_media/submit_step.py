"""The submit step: claim the row, call the backend with no transaction open, merge the reply.

1. ``claim``: a short committed UPDATE moves the row ``created → submitting``; only one worker
   wins. A row left in ``submitting`` by a killed worker is claimable again once stale.
2. ``backend.create`` with the task's idempotency key, outside any transaction or lock.
3. ``record_reply`` / ``give_back`` / ``fail``: a second short transaction, forward-only.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import aggregate, reconcile
from .backends import BackendError, TaskSpec, TransientBackendError, get_backend
from .conf import get_settings
from .enqueue import enqueue_submit
from .inputs import resolve_input
from .models import Task
from .remote import RemoteTask
from .status import Status
from .webhooks import apply_unmatched

logger = logging.getLogger("tapestry_media.dispatch")


def run_submit(task_pk: int) -> str:
    """Submit one task. Returns what happened, for logs and job results."""
    task = claim(task_pk)
    if task is None:
        return "skipped"
    try:
        backend = get_backend(task.backend)
        spec = TaskSpec(
            input=resolve_input(task, backend),
            kind=task.kind,
            options=task.options,
            metadata=task.metadata,
            webhook_url=get_settings().WEBHOOK_URL,
        )
        remote = backend.create(spec, idempotency_key=task.idempotency_key)
    except TransientBackendError as exc:
        return give_back(task, exc)
    except BackendError as exc:
        return fail(task, exc)
    except Exception as exc:
        logger.exception("unexpected error submitting task %s", task_pk)
        return give_back(task, TransientBackendError(str(exc) or repr(exc), kind="unexpected"))
    record_reply(task_pk, remote)
    return "submitted"


def claimable(now: datetime | None = None) -> Q:
    now = now or timezone.now()
    ready = Q(status=Status.CREATED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    abandoned = Q(status=Status.SUBMITTING, updated_at__lt=now - get_settings().STALE_AFTER)
    return ready | abandoned


def claim(task_pk: int) -> Task | None:
    now = timezone.now()
    won = Task.objects.filter(claimable(now), pk=task_pk).update(
        status=Status.SUBMITTING, updated_at=now
    )
    return Task.objects.get(pk=task_pk) if won else None


def record_reply(task_pk: int, remote: RemoteTask) -> None:
    """Apply the create call's reply (no event is stored for it), then the results that
    arrived before the task knew its remote id."""
    outcome = reconcile.apply(remote, source=reconcile.SUBMIT, task_pk=task_pk)
    if outcome.task is not None:
        apply_unmatched(outcome.task)


def give_back(task: Task, exc: BackendError) -> str:
    """A transient error: back to ``created`` for a retry with the *same* idempotency key."""
    config = get_settings()
    retries = task.retries + 1
    if retries > config.SUBMIT_MAX_RETRIES:
        exc.message = f"gave up after {config.SUBMIT_MAX_RETRIES} retries: {exc.message}"
        return fail(task, exc)
    delay = backoff(retries, exc.retry_after)
    run_after = timezone.now() + delay
    given_back = Task.objects.filter(pk=task.pk, status=Status.SUBMITTING).update(
        status=Status.CREATED,
        retries=retries,
        next_attempt_at=run_after,
        error=exc.as_error(),
        updated_at=timezone.now(),
    )
    logger.warning("task %s: transient error (%s); retry %d in %s", task.pk, exc, retries, delay)
    if given_back:
        enqueue_submit(task.pk, priority=task.priority, run_after=run_after)
    return "retry"


def backoff(retries: int, retry_after: float | None = None) -> timedelta:
    config = get_settings()
    seconds = min(config.SUBMIT_BACKOFF_BASE * 2 ** (retries - 1), config.SUBMIT_BACKOFF_MAX)
    seconds *= random.uniform(0.8, 1.2)
    return timedelta(seconds=max(seconds, retry_after or 0))


def fail(task: Task, exc: BackendError) -> str:
    with transaction.atomic():
        row = Task.objects.select_for_update().get(pk=task.pk)
        if row.status != Status.SUBMITTING:
            return "skipped"
        row.status = Status.FAILED
        row.error = exc.as_error()
        row.finished_at = timezone.now()
        row.save(update_fields=["status", "error", "finished_at", "updated_at"])
        reconcile.send_signals(row, Status.SUBMITTING, "submit")
        if row.submission_id is not None:
            aggregate.refresh(row.submission_id, row.generation)
    logger.error("task %s failed to submit: %s", task.pk, exc)
    return "failed"
