"""What the configured task backend takes: deferred runs at all, and how far ahead
(``MAX_DEFER``). Settings and the backend's class only; no database, no broker."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from .conf import get_settings
from .tasks_shim import task_backends

#: ``MAX_DEFER`` when it is not set, by the top-level package of the task backend's class.
#: Celery hands a message with an ``eta`` to a worker at once and the worker holds it unacked
#: until it is due: RabbitMQ's ``consumer_timeout`` (30 minutes by default) then closes the
#: channel, and Redis's ``visibility_timeout`` (1 hour) delivers it a second time.
DEFAULT_MAX_DEFER: dict[str, timedelta] = {
    "django_tasks_celery": timedelta(minutes=25),
}


def task_backend() -> object:
    return task_backends[get_settings().TASK_BACKEND]


def can_defer() -> bool:
    return bool(getattr(task_backend(), "supports_defer", False))


def max_defer() -> timedelta | None:
    """The longest ``run_after`` delay handed to the task backend (``None``: no limit)."""
    configured = get_settings().MAX_DEFER
    if configured is not None:
        return configured
    package = type(task_backend()).__module__.split(".", 1)[0]
    return DEFAULT_MAX_DEFER.get(package)


def beyond_limit(run_after: datetime, now: datetime | None = None) -> bool:
    limit = max_defer()
    return limit is not None and run_after - (now or timezone.now()) > limit
