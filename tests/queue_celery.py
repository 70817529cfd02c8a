"""The Celery app of the queue leg: ``celery -A tests.queue_celery worker``. A host project's
Celery module does the same (docs/deploy.md): configure from Django settings, set Django up,
then have tapestry_media's jobs registered with Celery."""

from __future__ import annotations

import django
from celery import Celery

app = Celery("tapestry_queues")
app.config_from_object("django.conf:settings", namespace="CELERY")
django.setup()

from tapestry_media.enqueue import bind_to_task_backend  # noqa: E402

# TASK_BACKEND is not the "default" alias here: the jobs must be bound to it to be registered.
bind_to_task_backend()
