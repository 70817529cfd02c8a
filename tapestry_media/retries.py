"""Deferred submit retries and the task backend's limits.

* A submit job that arrives before its task's ``next_attempt_at`` (RQ runs scheduled jobs up to
  a second early because it keeps whole seconds; clocks of worker hosts disagree) is enqueued
  again for that time, plus :data:`EARLY_TOLERANCE`, where the task backend can defer. Where it
  cannot, the retry is left to ``resync``: re-enqueueing at once would spin.
* A retry due later than the task backend's limit (:func:`.defer.max_defer`) is never handed
  to the backend (:mod:`.enqueue`): it waits in ``created`` and ``resync`` enqueues it once it
  is due (:func:`parked_due`), whatever ``STALE_AFTER`` says.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from .defer import can_defer, max_defer
from .enqueue import enqueue_submit
from .models import Task
from .status import Status

logger = logging.getLogger("tapestry_media.retries")

#: Added to ``next_attempt_at`` when an early job is enqueued again: more than RQ's truncation
#: to whole seconds, so the second run is not early too.
EARLY_TOLERANCE = timedelta(seconds=1.5)

#: ``resync`` counts a retry as parked when it was due this close to ``MAX_DEFER`` or later
#: (``next_attempt_at`` and ``updated_at`` are stamped microseconds apart).
_PARKED_MARGIN = timedelta(seconds=1)


def after_lost_claim(task_pk: int) -> str | None:
    """What a submit job does when its claim found nothing to take. Returns ``"early"`` when
    the job came before the task's retry time (and enqueues it again where the backend can
    defer), ``None`` when the retry fell due since the claim (claim again), ``"skipped"``
    otherwise (the task was taken, or is finished)."""
    row = (
        Task.objects.filter(pk=task_pk, status=Status.CREATED)
        .values("next_attempt_at", "priority")
        .first()
    )
    now = timezone.now()
    due = row["next_attempt_at"] if row else None
    if row is None or due is None:
        return "skipped"
    if due <= now:
        return None
    early = (due - now).total_seconds()
    if not can_defer():
        logger.info(
            "task %s: submit job arrived %.3f s before its retry time; the task backend cannot "
            "defer, so resync enqueues it once it is due",
            task_pk,
            early,
        )
        return "early"
    run_after = due + EARLY_TOLERANCE
    logger.info(
        "task %s: submit job arrived %.3f s before its retry time; enqueued again for %s",
        task_pk,
        early,
        run_after.isoformat(),
    )
    enqueue_submit(task_pk, priority=row["priority"], run_after=run_after)
    return "early"


def parked_due(now: datetime | None = None) -> Q:
    """``created`` tasks whose retry is due and was never handed to the task backend: it was
    due past :func:`max_defer`, or the backend cannot defer at all. A row resync has taken is
    stamped (``updated_at``) past its retry time, so it no longer matches."""
    now = now or timezone.now()
    if can_defer():
        limit = max_defer()
        if limit is None:
            return Q(pk__in=[])
        threshold = max(limit - _PARKED_MARGIN, timedelta(0))
    else:
        threshold = timedelta(0)
    due = Q(status=Status.CREATED, next_attempt_at__isnull=False, next_attempt_at__lte=now)
    return due & Q(next_attempt_at__gt=F("updated_at") + threshold)
