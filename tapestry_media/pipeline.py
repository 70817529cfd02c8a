"""Which tasks an upload gets, and ``submit()`` for host code with its own models.

Everything here runs inside the caller's transaction and touches no network: rows are written,
and one submit job per task is enqueued after commit.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import aggregate
from . import metadata as md
from .conf import get_settings
from .enqueue import enqueue_submit
from .models import MediaKind, Submission, Task
from .signals import SubmitVetoed, task_pre_submit
from .status import TERMINAL, Status

logger = logging.getLogger("tapestry_media.pipeline")

PRIORITY_WORDS = {"high": 10, "normal": 0, "low": -10}


def detect_media_kind(filename: str, content_type: str = "") -> str:
    """``video``/``image``/``audio`` from the extension (then the content type), or ""."""
    extension = os.path.splitext(filename)[1].lower().lstrip(".")
    for kind, extensions in get_settings().ALLOWED_EXTENSIONS.items():
        if extension in extensions:
            return kind
    guessed = content_type or mimetypes.guess_type(filename)[0] or ""
    major = guessed.split("/", 1)[0]
    return major if major in MediaKind.values else ""


def job_priority(metadata: Mapping[str, str]) -> int:
    """The seed's ``priority`` flag as a ``django.tasks`` priority: high/normal/low or -100…100."""
    raw = metadata.get("priority", "").strip().lower()
    if raw in PRIORITY_WORDS:
        return PRIORITY_WORDS[raw]
    try:
        return max(-100, min(100, int(raw)))
    except ValueError:
        return 0


def create_tasks_for_upload(submission: Submission) -> list[Task]:
    """Build and store the pipeline's tasks for the submission's current file generation."""
    steps = get_settings().PIPELINE.get(submission.media_kind, [])
    if not steps:
        logger.warning(
            "no pipeline for %s (media kind %r)", submission.public_id, submission.media_kind
        )
        return []
    layers = _upload_layers(submission)
    owned = md.server_owned(submission)
    tasks = []
    for index, step in enumerate(steps):
        task = build_task(
            kind=step["kind"],
            input=submission.file.name or "",
            options=dict(step.get("options", {})),
            layers=[*layers, step.get("metadata", {})],
            owned=owned,
            submission=submission,
            name=step["name"],
            is_primary=index == 0,
            created_by=None,
        )
        if task is not None:
            tasks.append(task)
    Task.objects.bulk_create(tasks)
    for task in tasks:
        enqueue_after_commit(task)
    return tasks


def check_upload_metadata(submission: Submission) -> None:
    """Build the metadata of every step the upload will get, as ``create_tasks_for_upload``
    does, and raise ``MetadataError`` if one breaks the limits: called before the file is
    stored, so a refused upload leaves nothing behind. (A ``task_pre_submit`` receiver can still
    add keys later; then the failed save deletes the file, see ``Submission.save``.)"""
    layers = _upload_layers(submission)
    owned = md.server_owned(submission)
    for step in get_settings().PIPELINE.get(submission.media_kind, []):
        md.build(
            layers=[*layers, step.get("metadata", {})],
            owned=owned,
            correlation=str(uuid.UUID(int=0)),  # its length is that of every Task's uuid
            for_submission=True,
        )


def _upload_layers(submission: Submission) -> list[Mapping[str, str]]:
    return [
        get_settings().DEFAULT_METADATA,
        md.submission_metadata(submission),
        _user_metadata(submission),
    ]


def _user_metadata(submission: Submission) -> dict[str, str]:
    """The submission's own metadata, minus the keys the server owns (logged, not trusted)."""
    extra = dict(submission.metadata or {})
    for key in md.reserved_keys(for_submission=True):
        if extra.pop(key, None) is not None:
            logger.warning("ignoring server-owned metadata key %r on %s", key, submission.public_id)
    return {k: v for k, v in extra.items() if isinstance(v, str)}


def build_task(
    *,
    kind: str,
    input: str,
    options: dict[str, Any],
    layers: list[Mapping[str, str]],
    owned: Mapping[str, str],
    submission: Submission | None,
    name: str,
    is_primary: bool,
    created_by: Any,
    backend: str | None = None,
) -> Task | None:
    """An unsaved Task with its metadata built, or ``None`` if a receiver vetoed it."""
    task = Task(
        submission=submission,
        generation=submission.file_generation if submission else 0,
        name=name,
        is_primary=is_primary,
        kind=kind,
        input=input,
        options=options,
        backend=backend or get_settings().backend_name,
        created_by=created_by,
    )
    extra: dict[str, str] = {}
    for layer in layers:
        extra.update(layer)
    try:
        task_pre_submit.send(sender=Task, task=task, metadata=extra, submission=submission)
    except SubmitVetoed as veto:
        logger.info("task %r for %s vetoed: %s", name or kind, submission, veto)
        return None
    task.metadata = md.build(
        layers=[extra],
        owned=owned,
        correlation=str(task.uuid),
        for_submission=submission is not None,
    )
    task.priority = job_priority(task.metadata)
    return task


def supersede_old_generations(submission: Submission) -> int:
    """Unfinished tasks of earlier file generations become ``superseded``."""
    return (
        Task.objects.filter(submission=submission, generation__lt=submission.file_generation)
        .exclude(status__in=TERMINAL)
        .update(status=Status.SUPERSEDED)
    )


def submit(
    *,
    input: str,
    kind: str,
    options: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    submission: Submission | None = None,
    name: str | None = None,
    created_by: Any = None,
    backend: str | None = None,
) -> Task:
    """Create one Task and submit it after commit, like ``POST /tasks``. ``backend``
    ("ittybit", "local", "dummy" or a dotted path) overrides ``BACKEND`` for this task.

    Without a submission, ``user_id``/``submission_id`` and the rest come from ``metadata`` as in
    the seed; only the correlation key is reserved. With one, its server-owned keys win.
    """
    user_metadata = md.validate_metadata(dict(metadata or {}))
    md.reject_reserved(user_metadata, for_submission=submission is not None)
    if (
        name
        and submission is not None
        and Task.objects.filter(
            Q(submission=submission, generation=submission.file_generation, name=name)
        ).exists()
    ):
        raise ValueError(f"{submission.public_id} already has a task named {name!r}")
    layers: list[Mapping[str, str]] = [get_settings().DEFAULT_METADATA]
    if submission is not None:
        layers.append(md.submission_metadata(submission))
    layers.append(user_metadata)
    task = build_task(
        kind=kind,
        input=input,
        options=dict(options or {}),
        layers=layers,
        owned=md.server_owned(submission) if submission is not None else {},
        submission=submission,
        name=name or "",
        is_primary=False,
        created_by=created_by,
        backend=backend,
    )
    if task is None:
        raise SubmitVetoed("a task_pre_submit receiver vetoed the task")
    task.save()
    enqueue_after_commit(task)
    return task


def enqueue_after_commit(task: Task) -> None:
    pk, priority = task.pk, task.priority
    transaction.on_commit(lambda: enqueue_submit(pk, priority=priority))


def start_new_attempt(task_pk: int) -> bool:
    """A deliberate retry of a failed or cancelled task: a new attempt with a new idempotency
    key. The old remote id goes to the attempt history, so a late result for it is recorded but
    never changes the task. Returns whether the task was retried."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_pk).first()
        if task is None or task.status not in (Status.FAILED, Status.CANCELLED):
            return False
        task.attempts = [
            *task.attempts,
            {
                "attempt": task.attempt,
                "remote_id": task.remote_id,
                "status": task.status,
                "error": task.error,
                "ended_at": (task.finished_at or timezone.now()).isoformat(),
            },
        ]
        task.attempt += 1
        task.status = Status.CREATED
        task.remote_id = None
        task.raw_status = ""
        task.error = None
        task.output = None
        task.output_url = ""
        task.progress = None
        task.retries = 0
        task.next_attempt_at = None
        task.submitted_at = task.started_at = task.finished_at = None
        task.save()
        if task.submission_id is not None:
            aggregate.refresh(task.submission_id, task.generation)
        enqueue_after_commit(task)
    return True
