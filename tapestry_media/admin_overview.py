"""The admin overview page: the figures of :mod:`tapestry_media.overview` as SVG charts, each
with its numbers in a table.

Served by the task admin (``<admin>/tapestry_media/task/overview/``) on whatever admin site the
host registered it with, behind that site's login; it needs the view permission of both tasks
and submissions. Linked from the app's index and both changelists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from . import overview
from .models import Submission, SubmissionStatus
from .status import Status
from .svg_charts import Bar, Series, horizontal_bars, stacked_bars

#: Stacking order (bottom first) and colour of each status: finished at the bottom.
UPLOAD_COLORS = {
    SubmissionStatus.READY: "#16a34a",
    SubmissionStatus.PARTIAL: "#f59e0b",
    SubmissionStatus.FAILED: "#dc2626",
    SubmissionStatus.PROCESSING: "#3b82f6",
    SubmissionStatus.PENDING: "#a5b4fc",
}
TASK_COLORS = {
    Status.SUCCEEDED: "#16a34a",
    Status.FAILED: "#dc2626",
    Status.CANCELLED: "#9f1239",
    Status.SUPERSEDED: "#d1d5db",
    Status.PROCESSING: "#3b82f6",
    Status.PENDING: "#93c5fd",
    Status.SUBMITTING: "#a78bfa",
    Status.CREATED: "#c4b5fd",
}
FAILURE_COLOR = "#dc2626"


@dataclass
class Chart:
    id: str
    title: str
    desc: str
    svg: SafeString
    #: (key, label) of each column; a timeline's status columns have the status as key
    headers: list[tuple[str, str]]
    rows: list[list[str]]
    legend: list[tuple[str, str]] = field(default_factory=list)
    empty: str = ""

    @property
    def body(self) -> SafeString:
        """The table's rows as markup, the first cell of each its header: built here once
        rather than by the template's nested loops (a thousand cells on this page)."""
        return mark_safe(  # noqa: S308 - every cell is escaped
            "".join(
                f'<tr><th scope="row">{escape(row[0])}</th>'
                + "".join(f"<td>{escape(cell)}</td>" for cell in row[1:])
                + "</tr>\n"
                for row in self.rows
            )
        )


class OverviewMixin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Adds ``overview/`` to a model admin's URLs (the task admin's)."""

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.overview_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_overview"
        return [path("overview/", view, name=name), *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not may_view_overview(request.user):
            raise PermissionDenied
        figures = overview.collect()
        context = {
            **self.admin_site.each_context(request),
            "title": "Processing overview",
            "opts": self.opts,
            "figures": figures,
            "charts": charts(figures),
            "stuck_age": duration_text(figures.oldest_stuck.age) if figures.oldest_stuck else "",
            "stuck_url": (
                reverse("admin:tapestry_media_task_change", args=[figures.oldest_stuck.pk])
                if figures.oldest_stuck is not None
                else ""
            ),
        }
        return TemplateResponse(request, "admin/tapestry_media/overview.html", context)


def may_view_overview(user: Any) -> bool:
    return bool(
        user.is_active
        and user.is_staff
        and user.has_perm("tapestry_media.view_task")
        and user.has_perm(f"tapestry_media.view_{Submission._meta.model_name}")
    )


# --- figures to charts ---------------------------------------------------------------------------


def charts(figures: overview.Overview) -> list[Chart]:
    return [
        _timeline("uploads-hourly", "Uploads per hour, last 24 h", "uploads",
                  figures.uploads_hourly, UPLOAD_COLORS, hourly=True),
        _timeline("uploads-daily", "Uploads per day, last 30 days", "uploads",
                  figures.uploads_daily, UPLOAD_COLORS, hourly=False),
        _timeline("tasks-hourly", "Tasks per hour, last 24 h", "tasks",
                  figures.tasks_hourly, TASK_COLORS, hourly=True),
        _timeline("tasks-daily", "Tasks per day, last 30 days", "tasks",
                  figures.tasks_daily, TASK_COLORS, hourly=False),
        _ready_times(figures.ready_times),
        _failures_by_kind(figures.failures_by_kind),
        _failures_by_error(figures.failures_by_error),
        _backlog(figures.task_backlog, figures.submission_backlog),
    ]  # fmt: skip


def _timeline(
    chart_id: str,
    title: str,
    noun: str,
    line: overview.Timeline,
    colors: dict[Any, str],
    *,
    hourly: bool,
) -> Chart:
    statuses = [s for s in colors if s in line.statuses]
    zone = timezone.get_current_timezone()
    starts = [s.astimezone(zone) if timezone.is_aware(s) else s for s in line.starts]
    labels = [_short_label(s, hourly) for s in starts]
    choices = dict(Status.choices if colors is TASK_COLORS else SubmissionStatus.choices)
    names = {s: str(choices[s]) for s in statuses}
    series = [Series(s, names[s].lower(), colors[s], line.counts[s]) for s in statuses]
    totals = line.totals()
    per_status = ", ".join(
        f"{sum(line.counts[s])} {names[s].lower()}" for s in statuses if sum(line.counts[s])
    )
    span = f"{len(labels)} {'hours' if hourly else 'days'} from {labels[0]} to {labels[-1]}"
    desc = f"Stacked bars, one per {'hour' if hourly else 'day'}, {span}: {sum(totals)} {noun}"
    desc += f" ({per_status})." if per_status else "."
    svg = stacked_bars(chart_id, title, desc, labels, series, label_every=3 if hourly else 5)
    rows = [
        [_long_label(start, hourly)] + [str(line.counts[s][i]) for s in statuses] + [str(totals[i])]
        for i, start in enumerate(starts)
    ]
    return Chart(
        id=chart_id,
        title=title,
        desc=desc,
        svg=svg,
        headers=[
            ("start", "hour" if hourly else "day"),
            *((s, names[s]) for s in statuses),
            ("total", "total"),
        ],
        rows=rows,
        legend=[(names[s], colors[s]) for s in statuses],
        empty="" if sum(totals) else f"No {noun} in this period.",
    )


def _short_label(start: datetime, hourly: bool) -> str:
    """``H:i`` or ``j M`` as Django's date filter writes them (months translated)."""
    return f"{start:%H:%M}" if hourly else f"{start.day} {str(MONTHS_3[start.month]).title()}"


def _long_label(start: datetime, hourly: bool) -> str:
    """``Y-m-d H:i`` or ``Y-m-d (D)`` (weekdays translated)."""
    if hourly:
        return f"{start:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d} ({WEEKDAYS_ABBR[start.weekday()]})"


def duration_text(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _ready_times(figures: list[overview.Percentiles]) -> Chart:
    bars, rows = [], []
    for window in figures:
        for name, value in (("median", window.median), ("p95", window.p95)):
            seconds = value.total_seconds() if value is not None else 0
            bars.append(
                Bar(f"{name}-{window.window}", f"{name}, {window.window.removeprefix('last ')}",
                    round(seconds, 1),
                    duration_text(value), "#0ea5e9" if name == "median" else "#0369a1")
            )  # fmt: skip
        rows.append(
            [window.window, str(window.count), duration_text(window.median),
             duration_text(window.p95)]
        )  # fmt: skip
    desc = "; ".join(
        f"{w.window}: median {duration_text(w.median)}, p95 {duration_text(w.p95)} "
        f"over {w.count} uploads"
        for w in figures
    )
    return _bar_chart(
        "ready-times",
        "Upload to ready",
        f"Horizontal bars, seconds from upload to ready. {desc}.",
        bars,
        _columns("created", "ready uploads", "median", "p95"),
        rows,
        "" if any(w.count for w in figures) else "No upload became ready in this period.",
    )


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def _columns(*labels: str) -> list[tuple[str, str]]:
    return [(label, label) for label in labels]


def _bar_chart(
    chart_id: str, title: str, desc: str, bars: list[Bar], headers: list[tuple[str, str]],
    rows: list[list[str]], empty: str,
) -> Chart:  # fmt: skip
    svg = horizontal_bars(chart_id, title, desc, bars)
    return Chart(id=chart_id, title=title, desc=desc, svg=svg, headers=headers, rows=rows,
                 empty=empty)  # fmt: skip


def _failures_by_kind(rates: list[overview.Rate]) -> Chart:
    bars = [
        Bar(r.label, r.label, round((r.rate or 0) * 100, 2),
            f"{_percent(r.rate)} ({r.failed} of {r.finished})", FAILURE_COLOR)
        for r in rates
    ]  # fmt: skip
    summary = "; ".join(f"{r.label} {_percent(r.rate)}" for r in rates) or "no finished tasks"
    return _bar_chart(
        "failures-by-kind",
        "Failure rate by task kind, last 30 days",
        f"Horizontal bars, failed tasks as a share of finished ones per kind: {summary}.",
        bars,
        _columns("kind", "failed", "finished", "failure rate"),
        [[r.label, str(r.failed), str(r.finished), _percent(r.rate)] for r in rates],
        "" if any(r.finished for r in rates) else "No finished tasks in this period.",
    )


def _failures_by_error(rates: list[overview.Rate]) -> Chart:
    bars = [
        Bar(r.label, r.label, r.failed, f"{r.failed} ({_percent(r.rate)})", FAILURE_COLOR)
        for r in rates
    ]
    summary = "; ".join(f"{r.label} {r.failed}" for r in rates) or "no failed tasks"
    return _bar_chart(
        "failures-by-error",
        "Failures by error kind, last 30 days",
        "Horizontal bars, failed tasks per error kind, with their share of all finished "
        f"tasks: {summary}.",
        bars,
        _columns("error kind", "failed", "share of finished tasks"),
        [[r.label, str(r.failed), _percent(r.rate)] for r in rates],
        "" if rates else "No failed tasks in this period.",
    )


def _backlog(tasks: dict[str, int], submissions: dict[str, int]) -> Chart:
    bars = [
        Bar(f"task-{s}", f"tasks {Status(s).label.lower()}", n, str(n), TASK_COLORS[Status(s)])
        for s, n in tasks.items()
    ] + [
        Bar(f"upload-{s}", f"uploads {SubmissionStatus(s).label.lower()}", n, str(n),
            UPLOAD_COLORS[SubmissionStatus(s)])
        for s, n in submissions.items()
    ]  # fmt: skip
    summary = "; ".join(f"{b.label} {b.text}" for b in bars)
    return _bar_chart(
        "backlog",
        "Backlog now",
        f"Horizontal bars, unfinished rows by status: {summary}.",
        bars,
        _columns("what", "status", "rows"),
        [["tasks", str(Status(s).label), str(n)] for s, n in tasks.items()]
        + [["uploads", str(SubmissionStatus(s).label), str(n)] for s, n in submissions.items()],
        "" if any(tasks.values()) or any(submissions.values()) else "Nothing waiting.",
    )
