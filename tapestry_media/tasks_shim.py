"""``django.tasks`` on Django 6, the ``django-tasks`` backport on Django 5.2."""

from __future__ import annotations

from importlib.util import find_spec

if find_spec("django.tasks"):
    from django.tasks import task, task_backends
    from django.tasks.base import Task as JobDefinition
    from django.tasks.base import TaskResult as JobResult
elif find_spec("django_tasks"):  # pragma: no cover - exercised by the Django 5.2 CI leg
    from django_tasks import task, task_backends  # type: ignore[no-redef,unused-ignore]
    from django_tasks.base import Task as JobDefinition  # type: ignore[assignment,no-redef,unused-ignore]
    from django_tasks.base import TaskResult as JobResult  # type: ignore[assignment,no-redef,unused-ignore]
else:  # pragma: no cover
    raise ImportError(
        "tapestry_media needs django.tasks: use Django 6, or on Django 5.2 install the "
        "backport with `pip install 'tapestry-media[compat]'` (django-tasks)."
    )

__all__ = ["JobDefinition", "JobResult", "task", "task_backends"]
