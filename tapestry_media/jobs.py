"""The core's background jobs (``django.tasks``). Each takes primary keys, never model
instances, and hands them to the step that does the work. Queue them with
:mod:`tapestry_media.enqueue`. The local engine's job lives with it, in
:mod:`tapestry_media.local.jobs`.

Named "jobs" so they never read like the ``Task`` model.
"""

from __future__ import annotations

import warnings
from typing import Any

from . import resync, submit_step
from .tasks_shim import task


@task()
def submit_task(task_pk: int) -> str:
    """Claim one task, create it on its backend, record the reply (:mod:`.submit_step`)."""
    return submit_step.run_submit(task_pk)


@task()
def poll_task(task_pk: int) -> str:
    """Fetch one task's remote state (``backend.get``) and reconcile it (:mod:`.resync`)."""
    return resync.poll(task_pk)


def __getattr__(name: str) -> Any:
    """``tapestry_media.jobs.run_local_job``: the local engine's job before 0.2, kept for one
    release so that jobs queued under this path still run. Deprecated."""
    if name == "run_local_job":
        warnings.warn(
            "tapestry_media.jobs.run_local_job moved to tapestry_media.local.jobs.run_local_job",
            DeprecationWarning,
            stacklevel=2,
        )
        # Lazy: the core never imports the local engine; only a job stored under the old
        # path comes this way (an `ignore_imports` entry in .importlinter).
        from .local.jobs import run_local_job

        return run_local_job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
