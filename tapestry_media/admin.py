"""Django admin for submissions, tasks and webhook events.

No admin request talks to the task API: retry and resubmit write rows and enqueue submit jobs
after commit, resync enqueues polling jobs, and reprocess re-applies a stored webhook body
through the same reconcile path as a delivery (database only).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import CharField, Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from . import pipeline, resync, uploads, webhooks
from .admin_buttons import ObjectActionsMixin
from .admin_erase import erase_uploaders, may_erase
from .admin_overview import OverviewMixin
from .admin_readonly import ReadOnlyAdmin
from .api.outputs import output_src
from .conf import BUILTIN_BACKENDS, get_settings
from .metadata import is_valid_key
from .models import Submission, SubmissionStatus, Task, WebhookEvent, metadata_q
from .remote import PayloadError
from .status import Status, raw_values

#: The seed's metadata keys: a bare search term is matched against each of them, exactly.
SEARCH_KEYS = ("user_id", "submission_id", "campaign", "source", "order_id", "priority")
NOT_POLLABLE = _(
    "only pending or processing tasks with a remote id, on a backend that can fetch tasks, "
    "are polled"
)
#: Bounded lookups for list filters, so a changelist never scans the task table for them.
FILTER_LIMIT = 50

BADGE_CLASSES = {
    SubmissionStatus.READY: "ok",
    Status.SUCCEEDED: "ok",
    SubmissionStatus.PARTIAL: "warn",
    SubmissionStatus.FAILED: "bad",
    Status.FAILED: "bad",
    Status.CANCELLED: "bad",
    SubmissionStatus.PROCESSING: "busy",
    Status.SUBMITTING: "busy",
    Status.SUPERSEDED: "muted",
}


# --- search -----------------------------------------------------------------------------------


def metadata_search(term: str, vendor: str) -> Q | None:
    """``key=value`` matches that metadata pair exactly; a bare term matches any of the seed's
    keys exactly (``usr_abc123`` finds ``user_id=usr_abc123``). ``None`` when the term cannot
    be a metadata value."""
    term = term.strip()
    if not term or len(term) > 2048:
        return None
    key, sep, value = term.partition("=")
    if sep:
        return metadata_q({key: value}, vendor) if is_valid_key(key) and value else None
    query = Q()
    for key in SEARCH_KEYS:
        query |= metadata_q({key: term}, vendor)
    return query


def known_backends() -> list[str]:
    """Backend names a task can carry: the built-in ones and the configured one."""
    return sorted({*BUILTIN_BACKENDS, get_settings().backend_name})


def _vendor(queryset: QuerySet[Any]) -> str:
    return connections[queryset.db].vendor


def _as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


# --- shared display helpers -------------------------------------------------------------------


def badge(status: str, label: str) -> SafeString:
    css = BADGE_CLASSES.get(status, "idle")  # type: ignore[call-overload]
    return format_html('<span class="tm-badge tm-badge-{}">{}</span>', css, label)


def pretty_json(value: object) -> SafeString:
    if value in (None, "", [], {}):
        return format_html('<span class="tm-muted">{}</span>', "—")
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="tm-json">{}</pre>', text)


def preview(task: Task) -> SafeString:
    src = output_src(task) if task.status == Status.SUCCEEDED else ""
    if not src:
        return format_html('<span class="tm-muted">{}</span>', "—")
    if task.kind == "video":
        poster = poster_src(task)
        if poster:
            return format_html(
                '<video class="tm-preview" controls preload="metadata" src="{}" poster="{}">'
                "</video>",
                src,
                poster,
            )
        return format_html(
            '<video class="tm-preview" controls preload="metadata" src="{}"></video>', src
        )
    if task.kind == "image":
        return format_html('<img class="tm-preview" src="{}" alt="" loading="lazy">', src)
    if task.kind == "audio":
        return format_html('<audio controls preload="none" src="{}"></audio>', src)
    return format_html('<a href="{}">{}</a>', src, _("output"))


def poster_src(task: Task) -> str:
    """The output of a finished image step of the same upload and file generation (the
    pipeline's poster), for a video's ``poster``; "" when there is none. One query."""
    if task.submission_id is None:
        return ""
    poster = (
        Task.objects.filter(
            submission_id=task.submission_id,
            generation=task.generation,
            kind="image",
            status=Status.SUCCEEDED,
        )
        .order_by("-is_primary", "pk")
        .first()
    )
    return output_src(poster) if poster is not None else ""


def _metadata_value(task: Task, key: str) -> str:
    value = (task.metadata or {}).get(key)
    return str(value) if value else "—"


def _progress(task: Task) -> str:
    return "—" if task.progress is None else f"{task.progress}%"


def _bounded_values(rows: Iterable[str]) -> list[tuple[str, str]]:
    return [(value, value) for value in rows if value]


class CampaignFilter(admin.SimpleListFilter):
    """Campaigns known from submissions (indexed column, bounded), matched against the task's
    metadata, so tasks created through ``submit()`` without a submission are found too."""

    title = _("campaign")
    parameter_name = "campaign"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        rows = (
            Submission.objects.exclude(campaign="")
            .order_by("campaign")
            .values_list("campaign", flat=True)
            .distinct()[:FILTER_LIMIT]
        )
        return _bounded_values(rows)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return queryset
        if queryset.model is Submission:
            return queryset.filter(campaign=value)
        return queryset.filter(metadata_q({"campaign": value}, _vendor(queryset)))


class KindFilter(admin.SimpleListFilter):
    """Task kinds from the pipeline setting (no ``SELECT DISTINCT`` over the task table)."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        kinds = {"video", "image", "audio"}
        for steps in get_settings().PIPELINE.values():
            kinds.update(step["kind"] for step in steps)
        return [(kind, kind) for kind in sorted(kinds)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        return queryset.filter(kind=self.value()) if self.value() else queryset


class BackendFilter(admin.SimpleListFilter):
    title = _("backend")
    parameter_name = "backend"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in known_backends()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        return queryset.filter(backend=self.value()) if self.value() else queryset


# --- actions ----------------------------------------------------------------------------------


def enqueue_resync(task_pks: Sequence[int]) -> int:
    """Enqueue a poll job (``backend.get`` + reconcile, in a worker) for each task that can be
    polled; returns how many were queued."""
    queued: int = resync.enqueue_resync(list(task_pks))
    return queued


def _report(request: HttpRequest, done: int, skipped: int, verb: str, skip_reason: object) -> None:
    if done:
        messages.success(request, f"{done} {verb}.")
    if skipped:
        messages.warning(request, f"{skipped} skipped: {skip_reason}")


# --- submissions ------------------------------------------------------------------------------


class CurrentTaskInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Task
    verbose_name = _("current task")
    verbose_name_plural = _("tasks of the current file generation")
    fields = ("name", "kind", "status_badge", "progress_text", "remote_id", "output_preview")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        generation = obj.file_generation if obj is not None else 0

        class CurrentGeneration(formset):  # type: ignore[valid-type,misc]
            def get_queryset(self) -> QuerySet[Task]:
                rows: QuerySet[Task] = super().get_queryset()
                return rows.filter(generation=generation).order_by("pk")

        return CurrentGeneration

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("status"))
    def status_badge(self, task: Task) -> SafeString:
        return badge(task.status, task.get_status_display())

    @admin.display(description=_("progress"))
    def progress_text(self, task: Task) -> str:
        return _progress(task)

    @admin.display(description=_("output"))
    def output_preview(self, task: Task) -> SafeString:
        return preview(task)


@admin.register(Submission)
class SubmissionAdmin(ObjectActionsMixin):
    list_display = (
        "public_id",
        "title",
        "uploader",
        "campaign",
        "status_badge",
        "task_count",
        "media_kind",
        "created_at",
    )
    list_display_links = ("public_id", "title")
    list_filter = ("status", CampaignFilter, "media_kind", "created_at")
    list_select_related = ("uploader",)
    search_fields = ("public_id",)
    search_help_text = _(
        "Public id, uploader name or email, title, or an exact metadata value "
        "(usr_abc123, summer-launch, order_id=A-1)."
    )
    readonly_fields = (
        "public_id",
        "status_badge",
        "file_generation",
        "file_size",
        "content_type",
        "media_kind",
        "created_at",
        "updated_at",
        "processed_at",
        "metadata_json",
    )
    fields = (
        ("public_id", "status_badge"),
        "uploader",
        "file",
        ("title", "campaign", "source"),
        ("media_kind", "content_type", "file_size", "file_generation"),
        "metadata",
        ("created_at", "updated_at", "processed_at"),
    )
    raw_id_fields = ("uploader",)
    inlines = (CurrentTaskInline,)
    actions = ("resubmit_action", "resync_action", erase_uploaders)
    object_actions = ("resubmit_action", "resync_action")

    class Media:
        css = {"all": ("tapestry_media/admin.css",)}

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return may_erase(request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Submission]:
        current = (
            Task.objects.filter(submission=OuterRef("pk"), generation=OuterRef("file_generation"))
            .order_by()
            .values("submission")
            .annotate(n=Count("pk"))
            .values("n")
        )
        rows: QuerySet[Submission] = super().get_queryset(request)
        return rows.annotate(task_count=Coalesce(Subquery(current), 0))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Submission], search_term: str
    ) -> tuple[QuerySet[Submission], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # One IN over a UNION of index-friendly branches, not an OR of them: PostgreSQL cannot
        # estimate an OR of subqueries (it assumes half the table matches), and the inflated
        # cost turned on JIT compilation, seconds per search at 100k rows.
        users = get_user_model()._default_manager.filter(_login_or_email(term))
        rows = Submission.objects.order_by()  # Django 5.2 refuses ORDER BY in a UNION's parts
        branches: list[QuerySet[Any, Any]] = [
            rows.filter(public_id=term).values("pk"),
            rows.filter(title__icontains=term).values("pk"),
            rows.filter(campaign=term).values("pk"),
            rows.filter(uploader__in=users.values("pk")).values("pk"),
        ]
        meta = metadata_search(term, _vendor(queryset))
        if meta is not None:
            tasks = Task.objects.filter(meta, submission__isnull=False).order_by()
            branches.append(tasks.values("submission_id"))
        matches = branches[0].union(*branches[1:])
        return queryset.filter(pk__in=matches), False

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Submission) -> SafeString:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description=_("tasks"), ordering="task_count")
    def task_count(self, obj: Submission) -> int:
        return getattr(obj, "task_count", 0)

    @admin.display(description=_("metadata"))
    def metadata_json(self, obj: Submission) -> SafeString:
        return pretty_json(obj.metadata)

    @admin.action(description=_("Resubmit (new file generation)"), permissions=["change"])
    def resubmit_action(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        pks = list(queryset.values_list("pk", flat=True))
        done = sum(uploads.resubmit(pk) for pk in pks)
        _report(request, done, len(pks) - done, "resubmitted", "no file to resubmit")

    @admin.action(description=_("Resync current tasks from the backend"), permissions=["change"])
    def resync_action(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        pks = list(
            Task.objects.filter(
                submission__in=queryset, generation=F("submission__file_generation")
            ).values_list("pk", flat=True)
        )
        queued = enqueue_resync(pks)
        _report(request, queued, len(pks) - queued, "resync jobs queued", NOT_POLLABLE)


# --- tasks ------------------------------------------------------------------------------------


@admin.register(Task)
class TaskAdmin(OverviewMixin, ObjectActionsMixin):
    # The metadata columns come right after the status, so they are on screen at 1280 px
    # beside the navigation and filter sidebars; the long ids come last, cut to a width.
    list_display = (
        "step",
        "status_badge",
        "user_id",
        "campaign",
        "submission_link",
        "remote_id_short",
        "progress_text",
        "created_at",
    )
    list_display_links = ("step",)
    list_filter = ("status", KindFilter, BackendFilter, CampaignFilter)
    list_select_related = ("submission",)
    # A large table: the primary key index orders it, and one COUNT(*) per page is enough.
    ordering = ("-pk",)
    show_full_result_count = False
    search_fields = ("remote_id",)
    search_help_text = _(
        "Remote id, correlation key, or an exact metadata value "
        "(usr_abc123, sub_9182, summer-launch, or key=value)."
    )
    readonly_fields = (
        "uuid",
        "submission_link",
        "name",
        "generation",
        "is_primary",
        "kind",
        "input",
        "status_badge",
        "raw_status",
        "backend",
        "remote_id",
        "progress_text",
        "output_preview",
        "output_link",
        "priority",
        "attempt",
        "retries",
        "next_attempt_at",
        "created_by",
        "created_at",
        "updated_at",
        "submitted_at",
        "started_at",
        "finished_at",
        "options_json",
        "metadata_json",
        "output_json",
        "error_json",
        "attempts_json",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("status_badge", "raw_status", "progress_text"),
                    ("name", "kind", "is_primary"),
                    ("submission_link", "generation"),
                    ("backend", "remote_id"),
                    "uuid",
                    "input",
                    "created_by",
                )
            },
        ),
        (_("Request"), {"fields": ("options_json", "metadata_json", "priority")}),
        (_("Result"), {"fields": ("output_preview", "output_link", "output_json", "error_json")}),
        (
            _("Attempts"),
            {"fields": (("attempt", "retries", "next_attempt_at"), "attempts_json")},
        ),
        (
            _("Times"),
            {
                "fields": (
                    ("created_at", "submitted_at"),
                    ("started_at", "finished_at", "updated_at"),
                )
            },
        ),
    )
    actions = ("retry_action", "resync_action")
    object_actions = actions

    class Media:
        css = {"all": ("tapestry_media/admin.css",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        # Every field is read-only: nothing to save. Change permission still runs the actions.
        extra = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().changeform_view(request, object_id, form_url, extra)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Task], search_term: str
    ) -> tuple[QuerySet[Task], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        key = _as_uuid(term)
        if key is not None:
            return queryset.filter(uuid=key), False
        # The (remote_id, backend) unique index serves this branch, so on
        # PostgreSQL the whole OR is a BitmapOr of index scans, not a table scan.
        query = Q(backend__in=known_backends(), remote_id=term)
        meta = metadata_search(term, _vendor(queryset))
        if meta is not None:
            query |= meta
        return queryset.filter(query), False

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Task) -> SafeString:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description=_("step"), ordering="name")
    def step(self, obj: Task) -> str:
        return obj.name or obj.kind

    @admin.display(description=_("submission"), ordering="submission")
    def submission_link(self, obj: Task) -> SafeString | str:
        """The submission's page, or the ``submission_id`` its metadata names (a task made
        through the API for the host's own record)."""
        if obj.submission_id is None or obj.submission is None:
            return _metadata_value(obj, "submission_id")
        url = reverse("admin:tapestry_media_submission_change", args=[obj.submission_id])
        return format_html('<a href="{}">{}</a>', url, obj.submission.public_id)

    @admin.display(description="user_id")
    def user_id(self, obj: Task) -> str:
        return _metadata_value(obj, "user_id")

    @admin.display(description="campaign")
    def campaign(self, obj: Task) -> str:
        return _metadata_value(obj, "campaign")

    @admin.display(description=_("remote id"), ordering="remote_id")
    def remote_id_short(self, obj: Task) -> SafeString:
        if not obj.remote_id:
            return format_html('<span class="tm-muted">{}</span>', "—")
        return format_html('<span class="tm-id" title="{}">{}</span>', obj.remote_id, obj.remote_id)

    @admin.display(description=_("progress"))
    def progress_text(self, obj: Task) -> str:
        return _progress(obj)

    @admin.display(description=_("preview"))
    def output_preview(self, obj: Task) -> SafeString:
        return preview(obj)

    @admin.display(description=_("output URL"))
    def output_link(self, obj: Task) -> SafeString:
        """The output's URL as :func:`~tapestry_media.api.outputs.output_src` gives it (a stored
        file's signed afresh), as a link; a stored ``output_url`` that is not safe is shown as
        text."""
        src = output_src(obj)
        if src:
            return format_html('<a href="{}">{}</a>', src, src)
        if obj.output_url:
            return format_html("<code>{}</code>", obj.output_url)
        return format_html('<span class="tm-muted">{}</span>', "—")

    @admin.display(description=_("options"))
    def options_json(self, obj: Task) -> SafeString:
        return pretty_json(obj.options)

    @admin.display(description=_("metadata"))
    def metadata_json(self, obj: Task) -> SafeString:
        return pretty_json(obj.metadata)

    @admin.display(description=_("output"))
    def output_json(self, obj: Task) -> SafeString:
        return pretty_json(obj.output)

    @admin.display(description=_("error"))
    def error_json(self, obj: Task) -> SafeString:
        return pretty_json(obj.error)

    @admin.display(description=_("earlier attempts"))
    def attempts_json(self, obj: Task) -> SafeString:
        return pretty_json(obj.attempts)

    @admin.action(description=_("Retry (new attempt)"), permissions=["change"])
    def retry_action(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        pks = list(queryset.values_list("pk", flat=True))
        done = sum(pipeline.start_new_attempt(pk) for pk in pks)
        _report(request, done, len(pks) - done, "retried", "only failed or cancelled tasks retry")

    @admin.action(description=_("Resync from the backend"), permissions=["change"])
    def resync_action(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        pks = list(queryset.values_list("pk", flat=True))
        queued = enqueue_resync(pks)
        _report(request, queued, len(pks) - queued, "resync jobs queued", NOT_POLLABLE)


# --- webhook events ---------------------------------------------------------------------------


class EventStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("matched", _("matched")), ("unmatched", _("unmatched")), ("error", _("error"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value == "matched":
            return queryset.filter(task__isnull=False)
        if value == "unmatched":
            return queryset.filter(task__isnull=True)
        if value == "error":
            return queryset.exclude(error="")
        return queryset


class ProgressTickFilter(admin.SimpleListFilter):
    """Hides the progress ticks (events that only report "processing", applied without an
    error) unless asked: on a busy site they are most of the rows."""

    title = _("progress ticks")
    parameter_name = "ticks"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("shown", _("Shown"))]

    def choices(self, changelist: Any) -> Iterator[Any]:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Hidden"),
        }
        yield {
            "selected": self.value() == "shown",
            "query_string": changelist.get_query_string({self.parameter_name: "shown"}),
            "display": _("Shown"),
        }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() == "shown":
            return queryset
        ticks = Q(raw_status_lower__in=raw_values(Status.PROCESSING), error="")
        rows: QuerySet[Any] = queryset.alias(raw_status_lower=Lower("raw_status"))
        return rows.exclude(ticks)


class TopicFilter(admin.SimpleListFilter):
    """Known topics (no ``SELECT DISTINCT`` over the event table)."""

    title = _("topic")
    parameter_name = "topic"
    TOPICS = (
        "task.created",
        "task.updated",
        "task.pending",
        "task.processing",
        "task.succeeded",
        "task.failed",
        "task.cancelled",
    )

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(topic, topic) for topic in self.TOPICS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        return queryset.filter(topic=self.value()) if self.value() else queryset


def reprocess(event_pk: int) -> str:
    """Apply a stored event's body again, as a new delivery of it would be. Returns the
    outcome (``applied``, ``unmatched``, ``stale``…) or ``error: …``."""
    fields = ("pk", "body", "source", "dedup_key")
    event = WebhookEvent.objects.filter(pk=event_pk).only(*fields).first()
    if event is None:
        return "missing"
    try:
        return webhooks.reprocess(event).reason
    except (PayloadError, webhooks.ProcessingError) as exc:
        return f"error: {exc}"


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = (
        "remote_task_id",
        "topic",
        "raw_status",
        "source",
        "task_link",
        "delivery_count",
        "first_received_at",
        "processed_at",
        "error_short",
    )
    list_filter = (ProgressTickFilter, EventStateFilter, "source", TopicFilter)
    list_select_related = ("task",)
    ordering = ("-pk",)
    show_full_result_count = False
    search_fields = ("remote_task_id",)
    search_help_text = _("Remote task id or event id, exactly.")
    readonly_fields = (
        "event_id",
        "dedup_key",
        "topic",
        "source",
        "remote_task_id",
        "raw_status",
        "task_link",
        "signature_scheme",
        "delivery_count",
        "first_received_at",
        "last_received_at",
        "processed_at",
        "error",
        "headers_json",
        "body_json",
    )
    fields = readonly_fields
    actions = ("reprocess_action",)

    class Media:
        css = {"all": ("tapestry_media/admin.css",)}

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WebhookEvent], search_term: str
    ) -> tuple[QuerySet[WebhookEvent], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # Both indexed: remote_task_id, and the event id through the unique dedup key.
        return queryset.filter(Q(remote_task_id=term) | Q(dedup_key=f"event:{term}")), False

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tapestry_media.change_webhookevent")

    @admin.display(description=_("task"), ordering="task")
    def task_link(self, obj: WebhookEvent) -> SafeString | str:
        if obj.task_id is None or obj.task is None:
            return format_html('<span class="tm-badge tm-badge-warn">{}</span>', _("unmatched"))
        url = reverse("admin:tapestry_media_task_change", args=[obj.task_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.task))

    @admin.display(description=_("error"))
    def error_short(self, obj: WebhookEvent) -> str:
        return obj.error[:80] if obj.error else ""

    @admin.display(description=_("headers"))
    def headers_json(self, obj: WebhookEvent) -> SafeString:
        return pretty_json(obj.headers)

    @admin.display(description=_("body"))
    def body_json(self, obj: WebhookEvent) -> SafeString:
        try:
            return pretty_json(json.loads(obj.body))
        except ValueError:
            return format_html('<pre class="tm-json">{}</pre>', obj.body)

    @admin.action(description=_("Reprocess the stored body"), permissions=["reprocess"])
    def reprocess_action(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        pks = queryset.order_by("first_received_at", "pk").values_list("pk", flat=True)
        results = {pk: reprocess(pk) for pk in pks}
        errors = {pk: r for pk, r in results.items() if r.startswith("error")}
        outcomes = sorted({r for r in results.values() if not r.startswith("error")})
        if len(results) > len(errors):
            messages.success(
                request, f"{len(results) - len(errors)} reprocessed ({', '.join(outcomes)})."
            )
        for pk, error in list(errors.items())[:5]:
            messages.error(request, f"Event {pk}: {error.removeprefix('error: ')}")


def _login_or_email(term: str) -> Q:
    """Users whose login name or e-mail address is ``term``, under the names the host's user
    model gives them (a custom model may have no ``username``, or log in by e-mail)."""
    model = get_user_model()
    names = {model.USERNAME_FIELD, getattr(model, "EMAIL_FIELD", "email")}
    query = Q(pk__in=[])
    for name in sorted(names):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if isinstance(field, CharField):  # EmailField is one
            query |= Q(**{f"{name}__iexact": term})
    return query
