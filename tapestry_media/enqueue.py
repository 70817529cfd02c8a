"""Putting this app's background jobs on the ``django.tasks`` queue.

A job is named here by its dotted path, the very string a task backend stores and a worker
imports to run it. So the steps that queue work (the submit step's retry, resync, the
pipeline) do not import :mod:`tapestry_media.jobs`, which imports them to run them: the job
module sits above the steps, this module below them, and no import goes in a circle.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from django.utils.module_loading import import_string

from .conf import get_settings
from .defer import beyond_limit
from .tasks_shim import JobDefinition, JobResult, task_backends

logger = logging.getLogger("tapestry_media.jobs")

SUBMIT_JOB = "tapestry_media.jobs.submit_task"
POLL_JOB = "tapestry_media.jobs.poll_task"
ERASE_JOB = "tapestry_media.erasure_jobs.erase_user"
#: Every job of this app, the local engine's included (for :func:`bind_to_task_backend`).
ALL_JOBS = (SUBMIT_JOB, POLL_JOB, ERASE_JOB, "tapestry_media.local.jobs.run_local_job")


def job_definition(path: str) -> JobDefinition[Any, Any]:
    """The job at ``path``, found the way a worker finds a stored job."""
    return cast("JobDefinition[Any, Any]", import_string(path))


def enqueue(
    job: JobDefinition[Any, Any] | str,
    *args: Any,
    priority: int = 0,
    run_after: datetime | None = None,
) -> JobResult[Any, Any] | None:
    """Enqueue ``job`` (a job or its dotted path) on the configured backend and queue.
    Features the task backend lacks are dropped (priority) or left to resync (a deferred run,
    or one due later than ``MAX_DEFER``); a failing enqueue is logged and left to resync, which
    finds every row that did not move."""
    if isinstance(job, str):
        job = job_definition(job)
    config = get_settings()
    backend = task_backends[config.TASK_BACKEND]
    options: dict[str, Any] = {"backend": config.TASK_BACKEND, "queue_name": config.QUEUE_NAME}
    if priority and backend.supports_priority:
        options["priority"] = priority
    if run_after is not None:
        if not backend.supports_defer:
            logger.info("task backend %r cannot defer; resync will retry", config.TASK_BACKEND)
            return None
        if beyond_limit(run_after):
            logger.info(
                "%s%r is due at %s, later than the task backend takes (MAX_DEFER); resync "
                "enqueues it then",
                job.name,
                args,
                run_after.isoformat(),
            )
            return None
        options["run_after"] = run_after
    try:
        return job.using(**options).enqueue(*args)
    except Exception:
        logger.exception("could not enqueue %s%r; resync will pick it up", job.name, args)
        return None


def enqueue_submit(
    task_pk: int, *, priority: int = 0, run_after: datetime | None = None
) -> JobResult[Any, Any] | None:
    """The submit job (``jobs.submit_task``) for one task."""
    return enqueue(SUBMIT_JOB, task_pk, priority=priority, run_after=run_after)


def enqueue_poll(task_pk: int) -> JobResult[Any, Any] | None:
    """The poll job (``jobs.poll_task``: ``backend.get`` and reconcile) for one task."""
    return enqueue(POLL_JOB, task_pk)


def enqueue_erase(user_pk: str) -> JobResult[Any, Any] | None:
    """The erase job (``erasure_jobs.erase_user``) for one user's pk, as text. ``None`` when
    the task backend refused it: its pending request (``erasure_requests``) stays for resync.
    The log line names no one (the job's argument is the user's pk), only the exception's
    class."""
    try:
        return _bound(ERASE_JOB).enqueue(user_pk)
    except Exception as exc:
        logger.error(
            "could not enqueue an erasure (%s): nothing erased yet, resync queues it again",
            type(exc).__name__,
        )
        return None


def _bound(path: str) -> JobDefinition[Any, Any]:
    config = get_settings()
    return job_definition(path).using(backend=config.TASK_BACKEND, queue_name=config.QUEUE_NAME)


def bind_to_task_backend() -> list[JobDefinition[Any, Any]]:
    """Every job of this app, validated on the configured task backend and queue. A backend
    that registers jobs while validating them (django-tasks-celery registers them with Celery)
    only knows them once they are enqueued there: a Celery worker for a ``TASK_BACKEND`` other
    than ``"default"`` calls this in its Celery module, or it refuses them as unregistered."""
    return [_bound(path) for path in ALL_JOBS]
