"""Model signal receivers, connected in ``AppConfig.ready``. Each hands over to a service:
what saving an upload does is :mod:`tapestry_media.uploads`, read top to bottom."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from . import uploads
from .api.outputs import stored_names
from .models import Submission, Task

logger = logging.getLogger("tapestry_media.receivers")

_caller_deletes_files: ContextVar[bool] = ContextVar("tapestry_media_caller_deletes_files")


def prepare_upload(
    sender: type[Submission], instance: Submission, raw: bool = False, **kwargs: Any
) -> None:
    """pre_save: see :func:`tapestry_media.uploads.prepare`."""
    if not raw:
        uploads.prepare(instance)


def submit_upload(
    sender: type[Submission], instance: Submission, raw: bool = False, **kwargs: Any
) -> None:
    """post_save: see :func:`tapestry_media.uploads.on_upload_saved`."""
    if not raw:
        uploads.on_upload_saved(instance)


@contextmanager
def files_deleted_by_caller() -> Iterator[None]:
    """Submissions deleted inside leave their files to the caller (erasure deletes them, and
    logs no file name): :func:`delete_files` does nothing."""
    token = _caller_deletes_files.set(True)
    try:
        yield
    finally:
        _caller_deletes_files.reset(token)


def delete_files(sender: type[Submission], instance: Submission, **kwargs: Any) -> None:
    """pre_delete: remove the upload and the local engine's outputs once the delete commits.
    Only ``Storage.delete`` is used, so a storage without ``path()`` (S3) works too."""
    if _caller_deletes_files.get(False):
        return
    names = [instance.file.name] if instance.file and instance.file.name else []
    rows = Task.objects.filter(submission_id=instance.pk).values_list("backend", "output")
    for backend, output in rows:
        names += stored_names(backend, output)

    def remove() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except Exception:
                logger.exception("could not delete %s", name)

    transaction.on_commit(remove, using=kwargs["using"])
