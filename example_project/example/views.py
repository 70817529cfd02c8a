"""Pages of the example site: sign in, upload, my submissions, one submission (live)."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control

from tapestry_media import direct_uploads
from tapestry_media.api.outputs import output_src
from tapestry_media.models import Submission, Task
from tapestry_media.status import Status

from .forms import UploadForm

TERMINAL = ("ready", "partial", "failed")
#: What a step's status reads as on the page (static/example/submission.js has the same).
STEP_LABELS = {
    "created": "Queued",
    "submitting": "Queued",
    "pending": "Queued",
    "processing": "Processing",
    "succeeded": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "superseded": "Replaced",
}
FAVICON = Path(__file__).resolve().parent / "static" / "example" / "favicon.svg"


def with_current_tasks(rows: QuerySet[Submission]) -> QuerySet[Submission]:
    current = Task.objects.filter(generation=F("submission__file_generation")).order_by(
        "-is_primary", "pk"
    )
    return rows.prefetch_related(Prefetch("tasks", queryset=current, to_attr="current"))


def outputs(submission: Submission) -> dict[str, str]:
    return {
        task.name: output_src(task)
        for task in getattr(submission, "current", [])
        if task.status == Status.SUCCEEDED and output_src(task)
    }


def step_key(task: Task) -> tuple[str, str]:
    """``(data-step, label)``. A task made through ``POST tasks/`` without a ``step`` has no
    name: its kind plus its short id tells it from the pipeline's step of the same kind."""
    if task.name:
        return task.name, task.name[:1].upper() + task.name[1:]
    short = task.uuid.hex[:8]
    return f"task-{short}", f"{task.kind[:1].upper()}{task.kind[1:]} · task {short}"


def steps(submission: Submission) -> list[dict[str, object]]:
    rows = []
    for task in getattr(submission, "current", []):
        key, name = step_key(task)
        progress = 100 if task.status == Status.SUCCEEDED else task.progress
        error = task.error.get("message", "") if isinstance(task.error, dict) else ""
        rows.append(
            {
                "key": key,
                "name": name,
                "status": task.status,
                "label": STEP_LABELS.get(task.status, task.status),
                "progress": progress,
                "error": error,
            }
        )
    return rows


@cache_control(max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FAVICON.read_bytes(), content_type="image/svg+xml")


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("example:submissions")
    return render(request, "example/home.html")


def processing_started(request: HttpRequest) -> None:
    """The message after an upload, the plain form's or upload.js's."""
    messages.success(
        request,
        "Uploaded. Processing has started; this page updates itself.",
        extra_tags="processing",  # submission.js removes it once the upload is final
    )


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        submission = form.save(commit=False)
        submission.uploader = request.user
        submission.save()
        processing_started(request)
        return redirect("example:submission", public_id=submission.public_id)
    campaigns = (
        Submission.objects.filter(uploader=request.user)
        .exclude(campaign="")
        .order_by("campaign")
        .values_list("campaign", flat=True)
        .distinct()[:20]
    )
    context = {
        "form": form,
        "campaigns": campaigns,
        # With a storage that presigns, upload.js sends the file straight to it (with a
        # progress bar); otherwise, or without JavaScript, the form posts it here.
        "direct_upload": direct_uploads.available(),
    }
    return render(request, "example/upload.html", context)


@login_required
def submissions(request: HttpRequest) -> HttpResponse:
    rows = with_current_tasks(Submission.objects.filter(uploader=request.user))
    page = Paginator(rows, 24).get_page(request.GET.get("page"))
    cards = [(s, outputs(s)) for s in page.object_list]
    return render(request, "example/submission_list.html", {"page": page, "cards": cards})


@login_required
def submission(request: HttpRequest, public_id: str) -> HttpResponse:
    rows = with_current_tasks(Submission.objects.for_user(request.user))
    obj = get_object_or_404(rows, public_id=public_id)
    if "uploaded" in request.GET:  # upload.js created it through the API: say so once
        processing_started(request)
        return redirect("example:submission", public_id=obj.public_id)
    context = {
        "submission": obj,
        "steps": steps(obj),
        "outputs": outputs(obj),
        "terminal": obj.status in TERMINAL,
        "api_url": reverse("tapestry_media:submission-detail", args=[obj.public_id]),
    }
    return render(request, "example/submission_detail.html", context)
