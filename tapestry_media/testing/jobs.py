"""Run jobs that the ``django.tasks`` DummyBackend recorded, for tests of host projects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import router
from django.utils import timezone

from ..models import Task
from ..tasks_shim import task_backends


def _dummy_backend(alias: str = "default") -> Any:
    backend = task_backends[alias]
    if not hasattr(backend, "results"):
        raise RuntimeError(
            f"settings.TASKS[{alias!r}] must be the DummyBackend to record jobs "
            f"(it is {type(backend).__name__})."
        )
    return backend


def enqueued(alias: str = "default") -> list[Any]:
    """The job results recorded so far, oldest first."""
    return list(_dummy_backend(alias).results)


def enqueued_names(alias: str = "default") -> list[str]:
    return [r.task.name for r in enqueued(alias)]


def clear_jobs(alias: str = "default") -> None:
    _dummy_backend(alias).clear()


def run_jobs(
    alias: str = "default", *, include_deferred: bool = False, limit: int = 1000
) -> list[Any]:
    """Run recorded jobs in order (and the due jobs they enqueue), then forget them. Deferred
    jobs (``run_after`` in the future) stay queued; ``include_deferred`` runs the ones already
    queued when called, as if their time had come (jobs deferred while running still wait).
    Returns the values the jobs returned."""
    backend = _dummy_backend(alias)
    already_queued = {id(r) for r in backend.results} if include_deferred else set()
    values: list[Any] = []
    for _ in range(limit):
        now = timezone.now()
        due = [
            r
            for r in backend.results
            if id(r) in already_queued or r.task.run_after is None or r.task.run_after <= now
        ]
        if not due:
            return values
        result = due[0]
        backend.results.remove(result)
        values.append(result.task.call(*result.args, **result.kwargs))
    raise RuntimeError(f"more than {limit} jobs: a job keeps enqueueing itself?")


def drain_jobs(capture_on_commit: Callable[..., Any], *, rounds: int = 10) -> None:
    """Run recorded jobs, and the ``on_commit`` callbacks they leave (which enqueue more jobs),
    until the queue is empty. ``capture_on_commit`` is pytest-django's
    ``django_capture_on_commit_callbacks`` or ``TestCase.captureOnCommitCallbacks``; it
    captures on the alias the database router gives this app's models, where they are."""
    using = router.db_for_write(Task)
    for _ in range(rounds):
        with capture_on_commit(using=using, execute=True):
            run_jobs()
        if not enqueued_names():
            return
