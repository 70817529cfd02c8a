"""Files in the app's storage prefixes that no row points to: uploads whose transaction rolled
back after the file was stored, outputs of jobs that were deleted. ``manage.py tapestry_media
prune --orphans`` removes them. A file younger than ``MIN_AGE`` is never touched: its row may
not be committed yet."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.utils import timezone

from .conf import get_settings
from .models import UPLOAD_PREFIX, LocalJob, Submission, Task

logger = logging.getLogger("tapestry_media.orphans")

MIN_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class Orphan:
    name: str
    size: int


def prefixes() -> tuple[str, ...]:
    return (UPLOAD_PREFIX, get_settings().LOCAL_OUTPUT_PREFIX)


def referenced() -> set[str]:
    """Every storage name a submission's file or a task's or local job's output points to."""
    names = set(Submission.objects.exclude(file="").values_list("file", flat=True).iterator())
    for model in (Task, LocalJob):
        rows = model.objects.filter(output__isnull=False).values_list("output", flat=True)
        for output in rows.iterator():
            names.update(storage_names(output))
    return names


def storage_names(output: Any) -> Iterator[str]:
    for item in output if isinstance(output, list) else [output]:
        name = item.get("storage_name") if isinstance(item, dict) else None
        if isinstance(name, str) and name:
            yield name


def find(min_age: timedelta = MIN_AGE) -> list[Orphan]:
    known = referenced()
    cutoff = timezone.now() - min_age
    found = []
    for prefix in prefixes():
        for name in walk(prefix):
            if name in known or default_storage.get_modified_time(name) > cutoff:
                continue
            found.append(Orphan(name, default_storage.size(name)))
    return found


def remove(orphans: Iterable[Orphan]) -> int:
    """Delete ``orphans``; the bytes freed. The log names files at DEBUG only: an orphan may be
    what an erasure could not delete, and its name the erased user's file name."""
    freed = count = 0
    for orphan in orphans:
        default_storage.delete(orphan.name)
        logger.debug("deleted orphan file %s (%d bytes)", orphan.name, orphan.size)
        freed += orphan.size
        count += 1
    if count:
        logger.info("deleted %d orphan file(s), %d bytes", count, freed)
    return freed


def walk(directory: str) -> Iterator[str]:
    try:
        dirs, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{directory}/{name}"
    for sub in dirs:
        yield from walk(f"{directory}/{sub}")
