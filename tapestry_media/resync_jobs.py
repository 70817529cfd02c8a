"""Background jobs of the polling fallback (see :mod:`tapestry_media.resync`)."""

from __future__ import annotations

from .tasks_shim import task


@task()
def poll_task(task_pk: int) -> str:
    """Fetch one task's remote state (``backend.get``) and reconcile it."""
    from .resync import poll

    return poll(task_pk)
