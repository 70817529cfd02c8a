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
from .tasks_shim import JobDefinition, JobResult, task_backends

logger = logging.getLogger("tapestry_media.jobs")

SUBMIT_JOB = "tapestry_media.jobs.submit_task"
POLL_JOB = "tapestry_media.jobs.poll_task"


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
    Features the task backend lacks are dropped (priority) or left to resync (a deferred run);
    a failing enqueue is logged and left to resync, which finds every row that did not move."""
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
