"""Output files of superseded work: tasks of an earlier file generation of their submission
(a new file or a resubmit replaced them), tasks marked ``superseded``, and the local engine's
jobs of earlier attempts of a retried task. ``manage.py tapestry_media prune
--outputs-superseded`` deletes them. Only files this app stored count
(``api.outputs.stored_names``): a ``storage_name`` in a cloud result could name any file.

A file is only deleted when no current row points to it (a current task's output, a local job
of a current task's remote id, a submission's file) and when it is older than
:data:`orphans.MIN_AGE`. The rows stay as history; a name whose file is already gone is
skipped, so a second run deletes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .api.outputs import stored_names
from .models import LocalJob, Submission, Task
from .orphans import MIN_AGE, Orphan, storage_names
from .status import Status

logger = logging.getLogger("tapestry_media.superseded")


def current_tasks() -> QuerySet[Task]:
    """Tasks whose output is in use: those without a submission, and those of the current
    file generation of theirs that were not superseded."""
    current = Q(submission__isnull=True) | Q(generation=F("submission__file_generation"))
    return Task.objects.filter(current).exclude(status=Status.SUPERSEDED)


def superseded_tasks() -> QuerySet[Task]:
    return Task.objects.exclude(pk__in=current_tasks().values("pk"))


def in_use() -> set[str]:
    """Storage names current rows point to (whichever backend: trusting more names here only
    keeps more files)."""
    names = set(Submission.objects.exclude(file="").values_list("file", flat=True).iterator())
    remote_ids: set[str] = set()
    for remote_id, output in current_tasks().values_list("remote_id", "output").iterator():
        names.update(storage_names(output))
        if remote_id:
            remote_ids.add(remote_id)
    names.update(_job_outputs(remote_ids))
    return names


def candidates() -> set[str]:
    """Storage names of superseded work: outputs of superseded tasks and of the local jobs of
    their remote ids, and of every task's earlier attempts."""
    names: set[str] = set()
    remote_ids: set[str] = set()
    rows = superseded_tasks().values_list("backend", "remote_id", "output")
    for backend, remote_id, output in rows.iterator():
        names.update(stored_names(backend, output))
        if remote_id:
            remote_ids.add(remote_id)
    for attempts in Task.objects.filter(attempt__gt=1).values_list("attempts", flat=True):
        for entry in attempts if isinstance(attempts, list) else []:
            old = entry.get("remote_id") if isinstance(entry, dict) else None
            if isinstance(old, str) and old:
                remote_ids.add(old)
    names.update(_job_outputs(remote_ids))
    return names


def _job_outputs(remote_ids: set[str]) -> Iterator[str]:
    ordered = sorted(remote_ids)
    for start in range(0, len(ordered), 2000):
        jobs = LocalJob.objects.filter(remote_id__in=ordered[start : start + 2000])
        for output in jobs.filter(output__isnull=False).values_list("output", flat=True):
            yield from storage_names(output)


def find(min_age: timedelta = MIN_AGE) -> list[Orphan]:
    """Superseded outputs that exist, no current row points to, and are older than
    ``min_age``."""
    cutoff = timezone.now() - min_age
    found = []
    for name in sorted(candidates() - in_use()):
        try:
            if not default_storage.exists(name):
                continue
            if default_storage.get_modified_time(name) > cutoff:
                continue
            found.append(Orphan(name, default_storage.size(name)))
        except Exception:  # a name the storage refuses (outside its root) is never deleted
            logger.warning("prune: cannot look at stored file %r", name, exc_info=True)
    return found
