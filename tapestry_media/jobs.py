"""Background jobs (``django.tasks``). Each takes primary keys, never model instances.

Named "jobs" so they never read like the ``Task`` model.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .conf import get_settings
from .tasks_shim import JobDefinition, JobResult, task, task_backends

logger = logging.getLogger("tapestry_media.jobs")


@task()
def submit_task(task_pk: int) -> str:
    from .submit_step import run_submit

    return run_submit(task_pk)


@task()
def run_local_job(job_pk: int) -> str:
    """Run one local-engine job (see ``local.run``)."""
    from .local.run import run

    return run(job_pk)


def enqueue(
    job: JobDefinition[Any, Any],
    *args: Any,
    priority: int = 0,
    run_after: datetime | None = None,
) -> JobResult[Any, Any] | None:
    """Enqueue ``job`` on the configured backend and queue. Features the task backend lacks
    are dropped (priority) or left to resync (a deferred run); a failing enqueue is logged
    and left to resync, which finds every row that did not move."""
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
    return enqueue(submit_task, task_pk, priority=priority, run_after=run_after)
