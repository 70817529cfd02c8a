"""The polling fallback: find tasks whose results never arrived and finish their work.

For tasks untouched for ``stale_after`` (``TAPESTRY_MEDIA["STALE_AFTER"]`` by default):

* ``pending``/``processing`` with a remote id → a ``poll_task`` job: ``backend.get`` and
  :func:`webhooks.record_poll` (stored as an event with source "poll", then applied).
  Tasks on a backend that cannot ``get`` are reported and left to their webhooks.
* ``created`` (whose submit job was lost) and ``submitting`` (whose worker died) → the submit
  job again; the idempotency key makes a repeated create return the same remote task.
* with ``failed=True``: failed tasks of the current file generation → a new attempt.

And every pending erasure (``ErasureRequest``) never queued or queued before the cutoff →
its erase job again (:mod:`.erasure_requests`; not with ``ids``, which name tasks).

Rows are claimed in short transactions with ``SELECT … FOR UPDATE SKIP LOCKED`` and stamped
(``updated_at``; a ``submitting`` row goes back to ``created``), so a resync running at the same
time on another machine skips them and the work is done once. Requests never call the network:
the command only enqueues (or, with ``wait``, runs the jobs in-process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from . import backfill, erasure_requests, retries, webhooks
from .backends import BackendError, TransientBackendError, get_backend
from .conf import get_settings
from .enqueue import enqueue_poll, enqueue_submit
from .models import Task
from .pipeline import start_new_attempt
from .status import Status
from .submit_step import run_submit

logger = logging.getLogger("tapestry_media.resync")

BATCH_SIZE = 200
POLLABLE = (Status.PENDING, Status.PROCESSING)


@dataclass
class Report:
    """What one resync did, by task pk."""

    polled: list[int] = field(default_factory=list)
    resubmitted: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    #: pending/processing tasks whose backend cannot fetch a task: left to webhooks.
    not_pollable: list[int] = field(default_factory=list)
    #: what each job returned, when run in-process (``wait=True``).
    results: dict[int, str] = field(default_factory=dict)
    #: the Events backfill that ran before polling (``None``: the backend has no events).
    backfilled: backfill.Report | None = None
    #: pending erasures whose job was queued again, and how many of those the backend refused.
    erasures: int = 0
    erasures_failed: int = 0

    @property
    def total(self) -> int:
        return len(self.polled) + len(self.resubmitted) + len(self.retried)


Progress = Callable[[str], None]


def run(
    *,
    stale_after: timedelta | None = None,
    failed: bool = False,
    ids: Sequence[int] | None = None,
    wait: bool = False,
    progress: Progress | None = None,
) -> Report:
    """One resync pass. ``ids`` limits it to those tasks (and then ``stale_after`` defaults to
    zero: the tasks asked for are handled whatever their age)."""
    say = progress or (lambda message: None)
    if stale_after is None:
        stale_after = timedelta(0) if ids else get_settings().STALE_AFTER
    cutoff = timezone.now() - stale_after
    scope = Task.objects.all() if ids is None else Task.objects.filter(pk__in=list(ids))
    report = Report()
    if ids is None:
        report.backfilled = backfill_events(progress=say)

    pollable_backends, report.not_pollable = _split_by_get_support(scope, cutoff)
    if report.not_pollable:
        say(f"{len(report.not_pollable)} stale task(s) on a backend that cannot fetch tasks are "
            f"left to their webhooks: {_ids(report.not_pollable)}")  # fmt: skip
    poll_rows = scope.filter(_stale_remote(cutoff), backend__in=pollable_backends)
    for batch in _claim_batches(poll_rows):
        report.polled += batch
        _dispatch(batch, "poll", report, wait=wait)
        say(f"polling: {len(report.polled)} task(s) {'polled' if wait else 'queued'}")

    stuck = _stuck_before_the_api(cutoff) | retries.parked_due()
    for batch in _claim_batches(scope.filter(stuck), requeue=True):
        report.resubmitted += batch
        _dispatch(batch, "submit", report, wait=wait)
        say(f"resubmitting: {len(report.resubmitted)} task(s) {'run' if wait else 'queued'}")

    if failed:
        for batch in _claim_batches(scope.filter(_failed_current(cutoff))):
            # start_new_attempt enqueues the submit job itself, after its commit.
            retried = [pk for pk in batch if start_new_attempt(pk)]
            report.retried += retried
            if wait:  # the queued job then finds nothing to claim
                _dispatch(retried, "submit", report, wait=True)
            say(f"retrying failed: {len(report.retried)} new attempt(s)")

    if ids is None:
        outcomes = erasure_requests.requeue_stale(cutoff)
        report.erasures, report.erasures_failed = len(outcomes), outcomes.count(False)
    return report


def backfill_events(*, progress: Progress | None = None) -> backfill.Report | None:
    """Read the configured backend's missed results from its Events resource, where it has
    one, so that polling is left with only the tasks the events did not settle."""
    backend = get_backend()
    if not backend.supports_events:
        return None
    return backfill.run(backend, progress=progress)


def enqueue_resync(task_pks: Sequence[int]) -> int:
    """Enqueue a poll job for each task, whatever its age (the admin action). Returns how many
    were queued: tasks without a remote id, terminal ones and ones on a backend without
    ``get`` are skipped."""
    rows = Task.objects.filter(pk__in=list(task_pks), status__in=POLLABLE, remote_id__isnull=False)
    queued = 0
    for pk, backend in rows.values_list("pk", "backend"):
        if _supports_get(backend) and enqueue_poll(pk) is not None:
            queued += 1
    return queued


def poll(task_pk: int) -> str:
    """The body of the ``poll_task`` job: fetch the remote state and reconcile it."""
    row = Task.objects.filter(pk=task_pk).values("backend", "remote_id", "status").first()
    if row is None or not row["remote_id"] or row["status"] not in POLLABLE:
        return "skipped"
    backend = get_backend(row["backend"])
    if not backend.supports_get:
        return "not_pollable"
    try:
        remote = backend.get(row["remote_id"])
    except TransientBackendError as exc:
        logger.warning("polling task %s failed, next resync retries: %s", task_pk, exc)
        return f"error: {exc.message}"
    except BackendError as exc:
        logger.error("polling task %s failed: %s", task_pk, exc)
        return f"error: {exc.message}"
    return webhooks.record_poll(remote, task_pk=task_pk).reason


# --- which rows ---------------------------------------------------------------------------------


def _stale_remote(cutoff: datetime) -> Q:
    return Q(status__in=POLLABLE, remote_id__isnull=False, updated_at__lt=cutoff)


def _stuck_before_the_api(cutoff: datetime) -> Q:
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return Q(updated_at__lt=cutoff) & (Q(status=Status.CREATED) & due | Q(status=Status.SUBMITTING))


def _failed_current(cutoff: datetime) -> Q:
    current = Q(submission__isnull=True) | Q(generation=F("submission__file_generation"))
    return Q(status=Status.FAILED, updated_at__lt=cutoff) & current


def _split_by_get_support(scope: QuerySet[Task], cutoff: datetime) -> tuple[list[str], list[int]]:
    """Backends (of stale pollable tasks) that can ``get``, and the tasks on those that cannot."""
    stale = scope.filter(_stale_remote(cutoff))
    names = sorted(set(stale.values_list("backend", flat=True)))
    able = [name for name in names if _supports_get(name)]
    unable = [name for name in names if name not in able]
    return able, list(stale.filter(backend__in=unable).values_list("pk", flat=True))


def _supports_get(backend_name: str) -> bool:
    try:
        return get_backend(backend_name).supports_get
    except Exception:
        logger.exception("backend %r of a stale task cannot be loaded", backend_name)
        return False


# --- claiming -------------------------------------------------------------------------------


def _claim_batches(rows: QuerySet[Task], *, requeue: bool = False) -> Iterable[list[int]]:
    while batch := _claim(rows, requeue=requeue):
        yield batch


def _claim(rows: QuerySet[Task], *, requeue: bool) -> list[int]:
    """Lock up to a batch of matching rows, skipping rows another resync holds, and stamp them
    so they no longer match (``updated_at`` moves past the cutoff) once this commits."""
    using = router.db_for_write(Task)
    # ``of`` keeps joined rows unlocked where the database can say so (not MariaDB/MySQL).
    of = ("self",) if connections[using].features.has_select_for_update_of else ()
    with transaction.atomic(using=using):
        locked = rows.select_for_update(skip_locked=True, of=of).order_by("pk")
        pks = list(locked.values_list("pk", flat=True)[:BATCH_SIZE])
        if pks:
            stamp: dict[str, Any] = {"updated_at": timezone.now()}
            if requeue:
                # A ``submitting`` row whose worker died goes back to ``created``, so the
                # submit job's claim takes it at once (its stale-``submitting`` rule would
                # wait another STALE_AFTER after this stamp).
                stamp["status"] = Case(
                    When(status=Status.SUBMITTING, then=Value(Status.CREATED.value)),
                    default=F("status"),
                )
            Task.objects.filter(pk__in=pks).update(**stamp)
    return pks


# --- running the work -------------------------------------------------------------------------


def _dispatch(pks: Sequence[int], kind: str, report: Report, *, wait: bool) -> None:
    """Enqueue a job per task, or with ``wait`` run it here (outside any transaction)."""
    for pk in pks:
        if kind == "poll":
            if wait:
                report.results[pk] = poll(pk)
            else:
                enqueue_poll(pk)
        elif wait:
            report.results[pk] = run_submit(pk)
        else:
            priority = Task.objects.filter(pk=pk).values_list("priority", flat=True).first()
            enqueue_submit(pk, priority=priority or 0)


def _ids(pks: Sequence[int], limit: int = 20) -> str:
    shown = ", ".join(str(pk) for pk in pks[:limit])
    return shown + (f" … (+{len(pks) - limit})" if len(pks) > limit else "")
