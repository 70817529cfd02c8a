"""Is processing stuck? A bounded snapshot of the backlog for ``manage.py tapestry_media status``.

Every figure is one aggregate or one ``LIMIT`` query: a fixed number of queries whatever the
number of rows, and no per-row loops. The figures on unfinished tasks scan the task table: no
index covers ``status`` or ``updated_at``, which every delivery changes (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from .models import Submission, SubmissionStatus, Task, WebhookEvent
from .status import Status

#: How many stranded task ids the report lists (the count is exact).
STRANDED_IDS_SHOWN = 10


@dataclass(frozen=True)
class Thresholds:
    """Limits past which the status is "not ok"; ``None`` turns one off."""

    max_stranded: int | None = 0
    max_failed_events: int | None = 0
    max_submitting_age: timedelta | None = timedelta(minutes=15)
    max_webhook_silence: timedelta | None = None
    max_backlog: int | None = None


def stranded_tasks(now: datetime, stale_after: timedelta) -> Q:
    """``created`` tasks whose submit job was due more than ``stale_after`` ago and never ran:
    a run claims the row (``submitting``) or defers it (a new ``updated_at``), so a row still
    ``created``, unchanged since before the cutoff and due (``next_attempt_at``) before it, is a
    job that no worker took."""
    cutoff = now - stale_after
    due_long_ago = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=cutoff)
    return Q(status=Status.CREATED, updated_at__lt=cutoff) & due_long_ago


def collect(*, stale_after: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """The snapshot as JSON-ready data (see the README for its shape)."""
    now = now or timezone.now()
    tasks = _counts(Task.objects.all(), Status.values)
    submissions = _counts(Submission.objects.all(), SubmissionStatus.values)
    failed = WebhookEvent.objects.filter(processed_at__isnull=True).exclude(error="")
    failed_figures = failed.aggregate(count=Count("pk"), oldest=Min("last_received_at"))
    stranded = Task.objects.filter(stranded_tasks(now, stale_after))
    return {
        "checked_at": now.isoformat(),
        "stale_after_seconds": stale_after.total_seconds(),
        "tasks_by_status": tasks,
        "submissions_by_status": submissions,
        "backlog": tasks[Status.CREATED] + tasks[Status.SUBMITTING],
        "oldest_created": _oldest(Status.CREATED, now),
        "oldest_submitting": _oldest(Status.SUBMITTING, now),
        "last_webhook": _last_webhook(now),
        "failed_events": {
            "count": failed_figures["count"],
            "oldest_received_at": _iso(failed_figures["oldest"]),
        },
        "stranded_jobs": {
            "count": stranded.count(),
            "task_ids": list(
                stranded.order_by("updated_at").values_list("pk", flat=True)[:STRANDED_IDS_SHOWN]
            ),
        },
    }


def breaches(report: dict[str, Any], limits: Thresholds) -> list[str]:
    """Each threshold the snapshot passes, as a sentence naming the figure and the limit."""
    found = []
    stranded = report["stranded_jobs"]["count"]
    if limits.max_stranded is not None and stranded > limits.max_stranded:
        found.append(
            f"{stranded} stranded submit job(s) > {limits.max_stranded}: is a worker running, "
            "with the right flags?"
        )
    failed = report["failed_events"]["count"]
    if limits.max_failed_events is not None and failed > limits.max_failed_events:
        found.append(f"{failed} failed webhook event(s) > {limits.max_failed_events}")
    submitting = report["oldest_submitting"]
    if (
        limits.max_submitting_age is not None
        and submitting is not None
        and submitting["age_seconds"] > limits.max_submitting_age.total_seconds()
    ):
        found.append(
            f"task {submitting['id']} has been submitting for {submitting['age_seconds']:.0f} s "
            f"> {limits.max_submitting_age.total_seconds():.0f} s"
        )
    last = report["last_webhook"]
    if limits.max_webhook_silence is not None:
        silence = limits.max_webhook_silence.total_seconds()
        if last is None or last["age_seconds"] > silence:
            heard = "never" if last is None else f"{last['age_seconds']:.0f} s ago"
            found.append(f"last webhook received {heard} (limit {silence:.0f} s)")
    if limits.max_backlog is not None and report["backlog"] > limits.max_backlog:
        found.append(f"backlog {report['backlog']} created/submitting > {limits.max_backlog}")
    return found


def _counts(queryset: Any, statuses: list[str]) -> dict[str, int]:
    counts = {status: 0 for status in statuses}
    for row in queryset.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def _oldest(status: Status, now: datetime) -> dict[str, Any] | None:
    """The task longest in ``status`` (by ``updated_at``)."""
    row = (
        Task.objects.filter(status=status)
        .order_by("updated_at")
        .values("pk", "updated_at", "next_attempt_at", "retries")
        .first()
    )
    if row is None:
        return None
    return {
        "id": row["pk"],
        "since": row["updated_at"].isoformat(),
        "age_seconds": (now - row["updated_at"]).total_seconds(),
        "next_attempt_at": _iso(row["next_attempt_at"]),
        "retries": row["retries"],
    }


def _last_webhook(now: datetime) -> dict[str, Any] | None:
    row = (
        WebhookEvent.objects.order_by("-last_received_at")
        .values("last_received_at", "source", "topic")
        .first()
    )
    if row is None:
        return None
    return {
        "received_at": row["last_received_at"].isoformat(),
        "age_seconds": (now - row["last_received_at"]).total_seconds(),
        "source": row["source"],
        "topic": row["topic"],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
