"""The erasure's background job (``django.tasks``), queued by the Submission admin's "Erase the
uploaders' data" action (:func:`tapestry_media.enqueue.enqueue_erase`).

Not in :mod:`tapestry_media.jobs`: :mod:`.erasure` reads output names with
``api.outputs.stored_names``, and the jobs layer sits below the API (``.importlinter``).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from . import erasure
from .tasks_shim import task


@task()
def erase_user(user_pk: str) -> str:
    """Erase everything this app holds about one user (:func:`.erasure.erase`). ``user_pk`` is
    the pk as text (a UUID is not JSON); the user model's pk field reads it back. A retried job
    finds nothing left to erase. Returns the counts alone, like the log line: a task backend
    may keep a job's return value."""
    pk = get_user_model()._meta.pk.to_python(user_pk)
    return erasure.erase(erasure.subject_of(pk)).counts()
