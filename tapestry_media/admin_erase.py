"""The Submission admin's "Erase the uploaders' data" action: a confirmation page listing what
:func:`erasure.erase` would delete for each uploader of the selected submissions (a dry run),
then, once confirmed, the erasure itself.

Only users who may delete every kind of row erasure deletes (submissions, tasks, webhook
events, local engine jobs) see the action.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from . import erasure
from .models import LocalJob, Submission, Task, WebhookEvent

ERASED_MODELS = (Submission, Task, WebhookEvent, LocalJob)


def may_erase(user: Any) -> bool:
    return bool(getattr(user, "is_active", False)) and all(
        user.has_perm(f"{m._meta.app_label}.delete_{m._meta.model_name}") for m in ERASED_MODELS
    )


@admin.action(description=_("Erase the uploaders' data (asks first)"), permissions=["erase"])
def erase_uploaders(
    modeladmin: admin.ModelAdmin[Submission], request: HttpRequest, queryset: QuerySet[Submission]
) -> TemplateResponse | None:
    user_pks = sorted(
        set(queryset.exclude(uploader=None).values_list("uploader_id", flat=True).distinct())
    )
    if not user_pks:
        messages.warning(request, _("The selected submissions have no uploader: nothing erased."))
        return None
    # by pk, never through resolve_user: another user's login may be this one's pk as text
    subjects = [erasure.subject_of(pk) for pk in user_pks]
    if request.POST.get("post") == "yes":
        for subject in subjects:
            report = erasure.erase(subject)
            messages.success(request, f"Erased {report.summary()}")
        return None
    plans = [(subject, erasure.erase(subject, dry_run=True)) for subject in subjects]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Erase the uploaders' data?"),
        "opts": modeladmin.model._meta,
        "plans": plans,
        "queryset": queryset,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/tapestry_media/erase_confirmation.html", context)
