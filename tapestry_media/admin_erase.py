"""The Submission admin's "Erase the uploaders' data" action: a confirmation page counting each
uploader's submissions and tasks, then, once confirmed, a pending erasure per uploader
(:mod:`.erasure_requests`, listed in the admin until done) and its background job
(:mod:`.erasure_jobs`). An erasure reads every row of the app's tables, which may take longer
than a request may run: the page shows only what indexed counts give, and the erasure itself
runs in a worker.

Only users who may delete every kind of row erasure deletes (submissions, tasks, webhook
events, local engine jobs) see the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import erasure_requests
from .admin_readonly import ReadOnlyAdmin
from .models import ErasureRequest, LocalJob, Submission, Task, WebhookEvent

ERASED_MODELS = (Submission, Task, WebhookEvent, LocalJob)


def may_erase(user: Any) -> bool:
    return bool(getattr(user, "is_active", False)) and all(
        user.has_perm(f"{m._meta.app_label}.delete_{m._meta.model_name}") for m in ERASED_MODELS
    )


@dataclass(frozen=True)
class Uploader:
    """A row of the confirmation page: what indexed counts say, not everything erasure finds."""

    pk: Any
    user: Any
    submissions: int
    tasks: int


def uploaders(user_pks: list[Any]) -> list[Uploader]:
    """Two queries per uploader, on the ``uploader`` and ``created_by`` foreign keys' indexes,
    however much data each has."""
    users = get_user_model()._default_manager.in_bulk(user_pks)
    return [
        Uploader(
            pk=pk,
            user=users.get(pk),
            submissions=Submission.objects.filter(uploader_id=pk).count(),
            tasks=Task.objects.filter(
                models.Q(submission__uploader_id=pk) | models.Q(created_by_id=pk)
            ).count(),
        )
        for pk in user_pks
    ]


@admin.action(description=_("Erase the uploaders' data (asks first)"), permissions=["erase"])
def erase_uploaders(
    modeladmin: admin.ModelAdmin[Submission], request: HttpRequest, queryset: QuerySet[Submission]
) -> TemplateResponse | None:
    # by pk, never as a login: another user's login may be this one's pk as text
    user_pks = sorted(
        set(queryset.exclude(uploader=None).values_list("uploader_id", flat=True).distinct())
    )
    if not user_pks:
        messages.warning(request, _("The selected submissions have no uploader: nothing erased."))
        return None
    if request.POST.get("post") == "yes":
        queue_erasures(request, [str(pk) for pk in user_pks])
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Erase the uploaders' data?"),
        "opts": modeladmin.model._meta,
        "uploaders": uploaders(user_pks),
        "queryset": queryset,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/tapestry_media/erase_confirmation.html", context)


def queue_erasures(request: HttpRequest, user_pks: list[str]) -> None:
    """A pending erasure per uploader (:mod:`.erasure_requests`), then its job once that
    commits. A job that could not be queued keeps its request, which ``resync`` queues again.
    Under an outer transaction (``ATOMIC_REQUESTS``) the jobs are queued when it commits, after
    this message: it then says they are requested, not queued."""
    outcomes: list[bool] = []
    erasure_requests.request(user_pks, queued=outcomes)
    if len(outcomes) < len(user_pks):
        messages.success(request, ngettext(
            "The erasure of %(n)d uploader's data is requested; its job is queued once this "
            "request commits (see pending erasures; resync queues one that could not be).",
            "The erasure of %(n)d uploaders' data is requested; their jobs are queued once "
            "this request commits (see pending erasures; resync queues those that could not "
            "be).",
            len(user_pks),
        ) % {"n": len(user_pks)})  # fmt: skip
        return
    queued, failed = outcomes.count(True), outcomes.count(False)
    if queued:
        messages.success(request, ngettext(
            "The erasure of %(n)d uploader's data is queued; the log line \"erased a user's "
            "data: …\" gives its counts once it is done.",
            "The erasure of %(n)d uploaders' data is queued; a log line \"erased a user's "
            "data: …\" per uploader gives the counts once each is done.",
            queued,
        ) % {"n": queued})  # fmt: skip
    if failed:
        messages.error(request, ngettext(
            "%(n)d erasure could not be queued (the log says why): nothing is erased for that "
            "uploader yet; it stays under pending erasures and resync queues it again.",
            "%(n)d erasures could not be queued (the log says why): nothing is erased for "
            "those uploaders yet; they stay under pending erasures and resync queues them "
            "again.",
            failed,
        ) % {"n": failed})  # fmt: skip


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    """The erasures asked for and not finished: a row leaves once its job has erased. Read
    only: a request is made by the Submission action and ended by the erasure alone."""

    list_display = ("user_pk", "requested_at", "enqueued_at")
    fields = list_display
    readonly_fields = list_display
    ordering = ("requested_at", "pk")
    show_full_result_count = False
