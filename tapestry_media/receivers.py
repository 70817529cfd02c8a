"""Model signal receivers, connected in ``AppConfig.ready``.

An upload becomes tasks when it is new or its file changed; a save that changes nothing
submits nothing. File facts are snapshotted at load time so the save path needs no extra query.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from . import pipeline
from .models import Submission, SubmissionStatus, Task

logger = logging.getLogger("tapestry_media.receivers")

_LOADED_FILE = "_tapestry_loaded_file"
_NEW_FILE = "_tapestry_new_file"
#: Set by ``pipeline.resubmit``: process the same stored file again as a new generation.
RESUBMIT = "_tapestry_resubmit"


def remember_file(sender: type[Submission], instance: Submission, **kwargs: Any) -> None:
    """post_init: note the stored file name (``None`` when the field is deferred)."""
    value = instance.__dict__.get("file")
    name = getattr(value, "name", value)
    setattr(instance, _LOADED_FILE, name if instance.pk else None)


def prepare_upload(sender: type[Submission], instance: Submission, **kwargs: Any) -> None:
    """pre_save: detect a new file (or a resubmit), bump the generation, supersede the old
    generation's unfinished tasks and fill in the file facts.

    Superseding here, before the submission's own UPDATE, keeps one lock order everywhere:
    task rows first, then the submission row (the webhook path locks a task, then its
    submission), so a new file and a result arriving together cannot deadlock."""
    if kwargs.get("raw"):
        return
    current = (instance.file.name or "") if instance.file else ""
    new_file = bool(current) and (
        instance._state.adding
        or current != getattr(instance, _LOADED_FILE, None)
        or getattr(instance, RESUBMIT, False)
    )
    if new_file and not instance._state.adding and getattr(instance, _LOADED_FILE, None) is None:
        # The field was deferred at load: ask the database once.
        stored = Submission.objects.filter(pk=instance.pk).values_list("file", flat=True).first()
        new_file = stored != current or getattr(instance, RESUBMIT, False)
    setattr(instance, _NEW_FILE, new_file)
    setattr(instance, RESUBMIT, False)
    if not new_file:
        return
    if not instance._state.adding:
        instance.file_generation += 1
        pipeline.supersede_old_generations(instance)
    instance.status = SubmissionStatus.PENDING
    instance.processed_at = None
    if not getattr(instance.file, "_committed", True):  # a new upload, not the stored file
        upload = instance.file.file
        size = getattr(upload, "size", None)
        instance.file_size = size if size is not None else instance.file_size
        instance.content_type = getattr(upload, "content_type", "") or instance.content_type
    if not instance.media_kind:
        instance.media_kind = pipeline.detect_media_kind(current, instance.content_type)
    pipeline.check_upload_metadata(instance)  # before the file field's pre_save stores the file


def submit_upload(sender: type[Submission], instance: Submission, **kwargs: Any) -> None:
    """post_save: for a new file, create the new generation's tasks."""
    if kwargs.get("raw") or not getattr(instance, _NEW_FILE, False):
        return
    setattr(instance, _NEW_FILE, False)
    setattr(instance, _LOADED_FILE, instance.file.name)
    pipeline.create_tasks_for_upload(instance)


def delete_files(sender: type[Submission], instance: Submission, **kwargs: Any) -> None:
    """post_delete: remove the upload and the local engine's outputs once the delete commits."""
    names = [instance.file.name] if instance.file and instance.file.name else []
    names += [
        out["storage_name"]
        for out in Task.objects.filter(submission_id=instance.pk).values_list("output", flat=True)
        if isinstance(out, dict) and isinstance(out.get("storage_name"), str)
    ]

    def remove() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except Exception:
                logger.exception("could not delete %s", name)

    transaction.on_commit(remove, using=kwargs["using"])
