"""Submission (an upload), Task (one remote media task) and WebhookEvent (one delivery).

Deletion: deleting a Submission deletes its Tasks (CASCADE) and, after commit, its uploaded file
and the outputs the local engine stored for it (see ``receivers.delete_files``). Deleting a user
keeps their submissions with ``uploader`` set to NULL (SET_NULL): the media and its results stay
until the host deletes them. Deleting a Task keeps its WebhookEvents (``task`` set to NULL).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Collection, Iterable
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, router, transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.utils.translation import gettext_lazy as _

from .metadata_limits import validate_metadata
from .status import TERMINAL, Status
from .upload_limits import validate_upload

logger = logging.getLogger("tapestry_media.models")


def new_submission_id() -> str:
    return f"sub_{secrets.token_hex(8)}"


UPLOAD_PREFIX = "tapestry_media/uploads"


def upload_to(instance: Submission, filename: str) -> str:
    return f"{UPLOAD_PREFIX}/{instance.public_id}/{filename}"


class MediaKind(models.TextChoices):
    VIDEO = "video", _("Video")
    IMAGE = "image", _("Image")
    AUDIO = "audio", _("Audio")


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    READY = "ready", _("Ready")
    PARTIAL = "partial", _("Partially ready")
    FAILED = "failed", _("Failed")


def may_view_all(user: Any, model: type[models.Model]) -> bool:
    """The model's ``view_…`` permission (superusers have it); ``is_staff`` alone is not it."""
    opts = model._meta
    return bool(getattr(user, "is_active", False)) and bool(
        user.has_perm(f"{opts.app_label}.view_{opts.model_name}")
    )


def visible_to(queryset: models.QuerySet[Any], user: Any, own: Q) -> Any:
    """Holders of the view permission see every row, anonymous users none, everyone else the
    rows ``own`` selects."""
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if may_view_all(user, queryset.model):
        return queryset
    return queryset.filter(own)


class SubmissionQuerySet(models.QuerySet["Submission"]):
    def for_user(self, user: Any) -> SubmissionQuerySet:
        return visible_to(self, user, Q(uploader=user))  # type: ignore[no-any-return]


class Submission(models.Model):
    public_id = models.CharField(
        _("public id"), max_length=40, unique=True, default=new_submission_id, editable=False
    )
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploader"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tapestry_submissions",
    )
    file = models.FileField(_("file"), upload_to=upload_to, max_length=500)
    file_size = models.BigIntegerField(_("file size"), null=True, blank=True, editable=False)
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    media_kind = models.CharField(
        _("media kind"), max_length=10, choices=MediaKind.choices, blank=True
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    campaign = models.CharField(_("campaign"), max_length=100, blank=True, db_index=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    metadata = models.JSONField(_("extra metadata"), default=dict, blank=True)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=SubmissionStatus.choices,
        default=SubmissionStatus.PENDING,
    )
    file_generation = models.PositiveIntegerField(_("file generation"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    #: The file name the database holds for this row, as far as this instance knows: "" for a
    #: row not saved yet, the loaded value after ``from_db``/``refresh_from_db``, the stored
    #: value after ``save()``; ``None`` while unknown (loaded with ``file`` deferred).
    #: :func:`tapestry_media.uploads.file_changed` compares the current file with it.
    stored_file_name: str | None = ""

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        ordering = ("-created_at", "-pk")
        indexes = [
            # The API's task input by file name (``api.views.own_submission``). No webhook
            # update writes ``file``: those updates stay HOT (migration 0011).
            models.Index(fields=("file",), name="tapestry_submission_file_idx"),
        ]

    def __str__(self) -> str:
        return self.title or self.public_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        """One transaction for the row and its tasks (the receivers write both), also when the
        caller has none: a crash between them must not leave an upload without tasks. No
        savepoint inside a caller's transaction, so that path costs no extra statement. A save
        that raises after storing a new file deletes it: no committed row can point to it."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        if self.stored_file_name is None and not self._file_deferred():
            # Loaded without its file column, which was then set: ask the database once.
            stored = type(self)._base_manager.using(using).filter(pk=self.pk)
            self.stored_file_name = stored.values_list("file", flat=True).first() or ""
        file = None if self._file_deferred() else self.file
        upload: Any = file if file and not getattr(file, "_committed", True) else None
        unsaved_name = upload.name if upload is not None else ""
        try:
            with transaction.atomic(using=using, savepoint=False):
                super().save(*args, **kwargs)
        except BaseException:
            if upload is not None and upload._committed:
                self._unstore(upload, unsaved_name)
            raise
        if file is not None:
            self.stored_file_name = file.name or ""

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
    ) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        if not instance._file_deferred():
            instance.stored_file_name = instance.__dict__["file"] or ""  # the column's text
        else:
            instance.stored_file_name = None
        return instance

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: models.QuerySet[Self] | None = None,
    ) -> None:
        fields = None if fields is None else list(fields)
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if (fields is None or "file" in fields) and not self._file_deferred():
            self.stored_file_name = self.file.name or ""

    def _file_deferred(self) -> bool:
        return "file" in self.get_deferred_fields()

    def _unstore(self, upload: Any, unsaved_name: str) -> None:
        """The save that stored ``upload`` failed, so no row points to it: delete the file and
        put the unsaved upload back, so that a retry stores it again."""
        try:
            upload.storage.delete(upload.name)
        except Exception:
            logger.exception("could not delete %s after a failed save", upload.name)
        upload.name, upload._committed = unsaved_name, False
        self.file = upload

    def clean(self) -> None:
        # Only a new, not yet stored file is checked (``_committed`` is False until saved).
        if not self.file or getattr(self.file, "_committed", True):
            return
        try:
            validate_upload(self.file)
        except ValidationError as exc:
            raise ValidationError({"file": exc.messages}) from exc

    def current_tasks(self) -> models.QuerySet[Task]:
        return self.tasks.filter(generation=self.file_generation)


def metadata_q(pairs: dict[str, str], vendor: str) -> Q:
    """All ``pairs`` present in ``Task.metadata``, exactly. On PostgreSQL this is
    ``metadata @> %s`` (the pairs as one JSON parameter), which the GIN index of migration 0003
    serves (``metadata -> 'key' = '"value"'`` would scan the table); SQLite and MySQL have no
    such ``contains``, so there it is one text comparison per key, ``json_extract(metadata, %s)
    = %s``, with the key's path and the value as parameters."""
    if vendor == "postgresql":
        return Q(metadata__contains=pairs)
    # The key is a parameter of the transform, never part of a lookup path: a key such as
    # "campaign__regex" must stay a key, not choose a lookup.
    return Q(*(Exact(KeyTextTransform(key, "metadata"), value) for key, value in pairs.items()))


class TaskQuerySet(models.QuerySet["Task"]):
    def with_metadata(self, **pairs: str) -> TaskQuerySet:
        """Exact match on metadata values: ``with_metadata(campaign="summer-launch")``."""
        validate_metadata(pairs)
        return self.filter(metadata_q(pairs, connections[self.db].vendor))

    def for_user(self, user: Any) -> TaskQuerySet:
        own = Q(submission__uploader=user) | Q(created_by=user)
        return visible_to(self, user, own)  # type: ignore[no-any-return]


class Task(models.Model):
    submission = models.ForeignKey(
        Submission,
        verbose_name=_("submission"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    uuid = models.UUIDField(_("correlation key"), default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("step"), max_length=40, blank=True)
    generation = models.PositiveIntegerField(_("file generation"), default=0)
    is_primary = models.BooleanField(_("primary step"), default=False)
    kind = models.CharField(_("kind"), max_length=40)
    input = models.TextField(_("input"))
    options = models.JSONField(_("options"), default=dict, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.CREATED
    )
    raw_status = models.CharField(_("remote status"), max_length=40, blank=True)
    backend = models.CharField(_("backend"), max_length=100)
    # NULL, not "": many tasks have no remote id yet, and the unique constraint must skip them.
    remote_id = models.CharField(_("remote id"), max_length=128, null=True, blank=True)  # noqa: DJ001
    output = models.JSONField(_("output"), null=True, blank=True)
    output_url = models.URLField(_("output URL"), max_length=2000, blank=True)
    error = models.JSONField(_("error"), null=True, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress"), null=True, blank=True)
    priority = models.SmallIntegerField(_("job priority"), default=0)
    attempt = models.PositiveIntegerField(_("attempt"), default=1)
    attempts = models.JSONField(_("earlier attempts"), default=list, blank=True)
    retries = models.PositiveIntegerField(_("submit retries"), default=0)
    next_attempt_at = models.DateTimeField(_("next submit at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ("-created_at", "-pk")
        permissions = [
            ("submit_any_input", _("Can create tasks on any input (URLs, other users' files)")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=("submission", "generation", "name"),
                condition=Q(submission__isnull=False) & ~Q(name=""),
                name="tapestry_media_task_step_per_generation",
            ),
            # remote_id first: the unscoped match of a result names no backend (migration 0009).
            models.UniqueConstraint(
                fields=("remote_id", "backend"),
                condition=Q(remote_id__isnull=False),
                name="tapestry_media_task_remote_id_backend",
            ),
        ]
        indexes = [
            # The admin overview reads by creation time (never updated: updates stay HOT), and
            # the failed tasks by it (``error`` changes once, when a task fails).
            models.Index(fields=("created_at",), name="tapestry_task_created_idx"),
            models.Index(
                fields=("created_at",),
                condition=Q(error__isnull=False),
                name="tapestry_task_error_idx",
            ),
        ]

    def __str__(self) -> str:
        label = self.name or self.kind
        return f"{label} {self.remote_id or self.uuid}"

    @property
    def idempotency_key(self) -> str:
        """Stable for one attempt (transient retries replay it), new for each attempt."""
        return f"{self.uuid.hex[:24]}-{self.attempt}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def known_remote_ids(self) -> set[str]:
        old = {a.get("remote_id") for a in self.attempts if isinstance(a, dict)}
        return {rid for rid in old if isinstance(rid, str) and rid}


class WebhookEvent(models.Model):
    """One distinct delivery. Repeats bump ``delivery_count`` and change nothing else."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        LOCAL = "local", _("Local engine")
        POLL = "poll", _("Polling")
        EVENTS = "events", _("Events backfill")

    dedup_key = models.CharField(_("dedup key"), max_length=200, unique=True)
    event_id = models.CharField(_("event id"), max_length=200, blank=True)
    topic = models.CharField(_("topic"), max_length=60, blank=True)
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.WEBHOOK
    )
    remote_task_id = models.CharField(_("remote task id"), max_length=128, db_index=True)
    raw_status = models.CharField(_("remote status"), max_length=40, blank=True)
    body = models.TextField(_("body"))
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    signature_scheme = models.CharField(_("signature scheme"), max_length=20, blank=True)
    task = models.ForeignKey(
        Task,
        verbose_name=_("task"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_events",
    )
    first_received_at = models.DateTimeField(_("first received"), auto_now_add=True)
    last_received_at = models.DateTimeField(_("last received"), auto_now_add=True)
    delivery_count = models.PositiveIntegerField(_("deliveries"), default=1)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    error = models.TextField(_("processing error"), blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ("-first_received_at", "-pk")
        indexes = [
            models.Index(
                fields=("remote_task_id",),
                condition=Q(task__isnull=True),
                name="tapestry_event_unmatched_idx",
            ),
            # prune deletes by age
            models.Index(fields=("last_received_at",), name="tapestry_event_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.topic or 'event'} {self.remote_task_id}"


class EventCursor(models.Model):
    """Where the last Events backfill of one backend and topic ended: the next pass asks for
    events ``after`` this id."""

    backend = models.CharField(_("backend"), max_length=100)
    kind = models.CharField(_("topic"), max_length=60)
    after = models.CharField(_("last event id"), max_length=200)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("event cursor")
        verbose_name_plural = _("event cursors")
        constraints = [
            models.UniqueConstraint(fields=("backend", "kind"), name="tapestry_event_cursor_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.backend} {self.kind} after {self.after}"


class LocalJob(models.Model):
    """The local engine's own record of a task, as a remote service would keep it: its state
    survives a lost delivery (``get`` reads it) and a killed worker (an expired lease lets the
    job run again)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSING = "processing", _("Processing")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    remote_id = models.CharField(_("remote id"), max_length=64, unique=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=40)
    input = models.TextField(_("input"))
    options = models.JSONField(_("options"), default=dict, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    webhook_url = models.CharField(_("webhook URL"), max_length=2000, blank=True)
    state = models.CharField(
        _("state"), max_length=12, choices=State.choices, default=State.PENDING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(_("progress"), null=True, blank=True)
    output = models.JSONField(_("output"), null=True, blank=True)
    error = models.JSONField(_("error"), null=True, blank=True)
    runs = models.PositiveIntegerField(_("runs"), default=0)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("local engine job")
        verbose_name_plural = _("local engine jobs")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return self.remote_id


class ErasureRequest(models.Model):
    """An erasure asked for and not finished yet: the admin's "Erase the uploaders' data"
    writes it before it queues the erase job, ``resync`` queues the job again while it is here,
    and the erasure deletes it in its own transaction. So the user's pk stays in this table only
    while their erasure is pending."""

    #: the pk as text, the way the erase job takes it (a UUID is not JSON)
    user_pk = models.CharField(_("user pk"), max_length=255, unique=True)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    #: last time a job was queued for it; NULL: never (queueing failed), so resync queues it
    enqueued_at = models.DateTimeField(_("queued"), null=True, blank=True)

    class Meta:
        verbose_name = _("pending erasure")
        verbose_name_plural = _("pending erasures")
        ordering = ("requested_at", "pk")

    def __str__(self) -> str:
        return f"usr_{self.user_pk}"
