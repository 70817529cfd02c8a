"""The figures of the admin overview: uploads and tasks over time, upload-to-ready times, failure
rates, the backlog and the oldest stuck task.

At most :data:`QUERIES` queries whatever the number of rows, all through the ORM, so one code
path serves SQLite, PostgreSQL and MariaDB (docs/performance.md has their plans):

* one ``GROUP BY`` per table over the rows created in the last 30 days (a bounded range on
  ``created_at``), by local day (``TruncDay`` in the current time zone) and status, tasks also
  by kind: the 30 day charts and the failure rate per kind; it also counts the unfinished rows
  and finds the oldest stuck task's ``updated_at``;
* one per table over the last 24 h (an index range on ``created_at``) by local hour
  (``TruncHour``) and status: the 24 h charts. Hours over the whole window, added up into days
  in Python, read 6k rows into Python for 300 here, and cost more Python than this query;
* the unfinished rows created outside the window (an index range), for the backlog;
* the failed tasks of the window by ``error["kind"]`` (the classification every stored error
  carries: the API's ``kind``/``type``/``code``, or the client error's class), through the
  partial index on ``created_at WHERE error IS NOT NULL``;
* upload-to-ready percentiles as ``percentile_cont`` computes them, one sort per window;
* the oldest stuck task's row, by its creation time.

No index on ``status`` or ``updated_at``: one would make every webhook's update non-HOT
(migration 0007).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
    QuerySet,
    TextField,
    Value,
    Window,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, RowNumber, TruncDay, TruncHour
from django.utils import timezone

from .conf import get_settings
from .models import Submission, SubmissionStatus, Task
from .status import Status

HOURS = 24
DAYS = 30
#: The longer window of the upload-to-ready percentiles: a week. Over 30 days the sort of every
#: ready upload's time cost 110-340 ms at 100k uploads, more than the rest of the page's SQL.
READY_DAYS = 7
#: Error kinds shown one by one; the rest are added up as "other".
ERROR_KINDS_SHOWN = 8
#: Statuses of a task that is not finished: the backlog.
UNFINISHED = (Status.CREATED, Status.SUBMITTING, Status.PENDING, Status.PROCESSING)
SUBMISSION_UNFINISHED = (SubmissionStatus.PENDING, SubmissionStatus.PROCESSING)
#: A task that ended with a result: the denominator of a failure rate.
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
#: Queries of :func:`collect` at most (fewer when there is nothing to read): a scan of each
#: table and its last 24 h, the backlog outside the window of each, the error kinds, a
#: percentile read per window, the oldest stuck task.
QUERIES = 2 + 2 + 2 + 1 + 2 + 1


@dataclass(frozen=True)
class Timeline:
    """Counts per bucket (oldest first) and per status."""

    starts: list[datetime]
    statuses: list[str]
    counts: dict[str, list[int]]

    def totals(self) -> list[int]:
        return [sum(self.counts[s][i] for s in self.statuses) for i in range(len(self.starts))]


@dataclass(frozen=True)
class Percentiles:
    window: str
    count: int
    median: timedelta | None
    p95: timedelta | None


@dataclass(frozen=True)
class Rate:
    label: str
    failed: int
    finished: int

    @property
    def rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None


@dataclass(frozen=True)
class StuckTask:
    pk: int
    label: str
    status: str
    since: datetime
    age: timedelta


@dataclass
class Overview:
    now: datetime
    stale_after: timedelta
    uploads_hourly: Timeline
    uploads_daily: Timeline
    tasks_hourly: Timeline
    tasks_daily: Timeline
    ready_times: list[Percentiles]
    failures_by_kind: list[Rate]
    failures_by_error: list[Rate]
    task_backlog: dict[str, int]
    submission_backlog: dict[str, int]
    oldest_stuck: StuckTask | None
    #: The time zone of the buckets: the current one, or UTC where the database cannot convert.
    zone: str = "UTC"
    #: The current time zone the database could not convert to (MySQL/MariaDB without their
    #: time zone tables), "" when it could.
    unconverted_zone: str = ""


def collect(now: datetime | None = None) -> Overview:
    """The figures as of ``now`` (the clock by default), bucketed in the current time zone.

    A database that cannot convert to it (MySQL or MariaDB without time zone tables: Django
    refuses their ``NULL``) gets UTC buckets, and the overview says so."""
    zone = timezone.get_current_timezone_name()
    database = connections[router.db_for_read(Task)]
    if settings.USE_TZ and zone != "UTC" and not database.features.has_zoneinfo_database:
        with timezone.override(UTC):
            return _collect(now or timezone.now(), "UTC", zone)
    return _collect(now or timezone.now(), zone, "")


def _collect(now: datetime, zone: str, unconverted_zone: str) -> Overview:
    stale_after = get_settings().STALE_AFTER
    hours = hour_starts(now, HOURS)
    days = day_starts(now, DAYS)
    window = (days[0], hours[-1] + timedelta(hours=1))  # the end: the current hour's end
    stuck = stuck_q(now, stale_after)
    uploads = _scan(Submission.objects.all(), window, hours[0])
    tasks = _scan(Task.objects.all(), window, hours[0], stuck=stuck)
    upload_backlog = _backlog(uploads, Submission.objects.all(), window, SUBMISSION_UNFINISHED)
    task_backlog = _backlog(tasks, Task.objects.all(), window, UNFINISHED, stuck=stuck)
    week = days[-READY_DAYS]
    week_count = sum(n for day, n in uploads.timed.items() if day >= _day(week))
    return Overview(
        now=now,
        stale_after=stale_after,
        uploads_hourly=_hourly(uploads.hours, hours, list(SubmissionStatus.values)),
        uploads_daily=_daily(uploads.days, days, list(SubmissionStatus.values)),
        tasks_hourly=_hourly(tasks.hours, hours, list(Status.values)),
        tasks_daily=_daily(tasks.days, days, list(Status.values)),
        ready_times=[
            _percentiles(f"last {HOURS} h", (hours[0], window[1]), uploads.timed_recent),
            _percentiles(f"last {READY_DAYS} days", (week, window[1]), week_count),
        ],
        failures_by_kind=_kind_rates(tasks.kinds),
        failures_by_error=_error_rates(tasks, window),
        task_backlog=task_backlog,
        submission_backlog=upload_backlog,
        oldest_stuck=_oldest_stuck(tasks, stuck, now),
        zone=zone,
        unconverted_zone=unconverted_zone,
    )


# --- time buckets ---------------------------------------------------------------------------------


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment) if settings.USE_TZ else moment


def _key(moment: datetime) -> datetime:
    """One bucket's identity, whatever zone the datetime is in: its UTC instant (naive ones,
    with ``USE_TZ = False``, are local times already)."""
    return moment.astimezone(UTC) if timezone.is_aware(moment) else moment


def hour_starts(now: datetime, hours: int) -> list[datetime]:
    """The starts of the last ``hours`` local hours, oldest first, the current one last. Steps
    are taken in absolute time (a DST change has a 23 or 25 h day, never a 2 h hour)."""
    top = _local(now).replace(minute=0, second=0, microsecond=0)
    if timezone.is_naive(top):
        return [top - timedelta(hours=k) for k in reversed(range(hours))]
    zone = top.tzinfo
    instant = top.astimezone(UTC)
    return [(instant - timedelta(hours=k)).astimezone(zone) for k in reversed(range(hours))]


def day_starts(now: datetime, days: int) -> list[datetime]:
    """Local midnights of the last ``days`` days, oldest first, today's last."""
    today = _local(now).date()
    dates = [today - timedelta(days=k) for k in reversed(range(days))]
    if not settings.USE_TZ:
        return [datetime.combine(d, time.min) for d in dates]
    return [timezone.make_aware(datetime.combine(d, time.min)) for d in dates]


def _day(moment: datetime) -> date:
    return _local(moment).date() if timezone.is_aware(moment) else moment.date()


def _midnight(day: date) -> datetime:
    start = datetime.combine(day, time.min)
    return timezone.make_aware(start) if settings.USE_TZ else start


@dataclass
class Scan:
    """What one table's two queries over the window found."""

    #: counts per status for each local day of the window
    days: dict[date, dict[str, int]] = field(default_factory=dict)
    #: counts per status for each local hour of the last 24 h (its UTC instant)
    hours: dict[datetime, dict[str, int]] = field(default_factory=dict)
    #: tasks: counts per status for each kind
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    #: submissions: ready ones with an upload-to-ready time, per day and in the last 24 h
    timed: dict[date, int] = field(default_factory=dict)
    timed_recent: int = 0
    #: tasks: the oldest ``updated_at`` of a stuck task, and the local day it was created on
    stuck_since: datetime | None = None
    stuck_day: date | None = None


def _scan(
    rows: QuerySet[Any],
    window: tuple[datetime, datetime],
    recent: datetime,
    stuck: Q | None = None,
) -> Scan:
    """Two queries. The rows created in ``window`` counted per local day (``TruncDay``) and
    status; for tasks also per kind, with the oldest stuck task's ``updated_at``; for
    submissions the ready ones that have a processing time. Then those created since
    ``recent`` (an index range on ``created_at``) per local hour and status. Days rather than
    hours over 30 days: a few hundred rows to read instead of thousands. Grouped by status
    rather than one filtered ``COUNT`` per status: one aggregate a row instead of eight, a
    fifth faster."""
    tasks = rows.model is Task
    statuses = Status.values if tasks else SubmissionStatus.values
    timed = Count("pk", filter=Q(processed_at__isnull=False))
    figures: dict[str, Any] = {"n": Count("pk")}
    group = ["day", "status"]
    if tasks:
        group.append("kind")
        figures["stuck_since"] = Min("updated_at", filter=stuck)
    else:
        figures["timed"] = timed
    in_window = rows.filter(created_at__gte=window[0], created_at__lt=window[1]).order_by()
    scan = Scan()
    daily = in_window.annotate(day=TruncDay("created_at")).values(*group).annotate(**figures)
    for row in daily:
        status, n = row["status"], row["n"]
        if status not in statuses:  # a value no choice knows: not drawn
            continue
        day = row["day"].date()
        since = row.get("stuck_since")
        if since is not None and (scan.stuck_since is None or since < scan.stuck_since):
            scan.stuck_since, scan.stuck_day = since, day
        scan.days.setdefault(day, dict.fromkeys(statuses, 0))[status] += n
        if tasks:
            scan.kinds.setdefault(row["kind"], dict.fromkeys(statuses, 0))[status] += n
        elif status == SubmissionStatus.READY:
            scan.timed[day] = scan.timed.get(day, 0) + row["timed"]
    hourly = (
        in_window.filter(created_at__gte=recent)
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "status")
        .annotate(n=Count("pk"), **({} if tasks else {"timed": timed}))
    )
    for row in hourly:
        status = row["status"]
        if status in statuses:
            scan.hours.setdefault(_key(row["hour"]), dict.fromkeys(statuses, 0))[status] += row["n"]
            if status == SubmissionStatus.READY:
                scan.timed_recent += row["timed"]
    return scan


def _hourly(buckets: dict[datetime, dict[str, int]], hours: Sequence[datetime],
            statuses: list[str]) -> Timeline:  # fmt: skip
    counts = {s: [buckets.get(_key(h), {}).get(s, 0) for h in hours] for s in statuses}
    return Timeline(list(hours), statuses, counts)


def _daily(buckets: dict[date, dict[str, int]], days: Sequence[datetime],
           statuses: list[str]) -> Timeline:  # fmt: skip
    dates = [_day(d) for d in days]
    counts = {s: [buckets.get(d, {}).get(s, 0) for d in dates] for s in statuses}
    return Timeline(list(days), statuses, counts)


# --- upload to ready ------------------------------------------------------------------------------


def _ready_q() -> Q:
    return Q(status=SubmissionStatus.READY, processed_at__isnull=False)


def _percentiles(window: str, bounds: tuple[datetime, datetime], count: int) -> Percentiles:
    if not count:
        return Percentiles(window, 0, None, None)
    rows = Submission.objects.filter(
        _ready_q(), created_at__gte=bounds[0], created_at__lt=bounds[1]
    ).annotate(took=ExpressionWrapper(F("processed_at") - F("created_at"), DurationField()))
    median, p95 = percentiles(rows, count, (0.5, 0.95))
    return Percentiles(window, count, median, p95)


def percentiles(rows: QuerySet[Any], count: int, fractions: Sequence[float]) -> list[timedelta]:
    """``percentile_cont`` of ``took`` over ``rows`` (``count`` of them) for each fraction:
    linear between the two nearest ranks. One query, one sort: the rows are numbered in
    ``took`` order (a window function) and only the ranks needed are read."""
    wanted: list[tuple[float, int, int]] = []
    for fraction in fractions:
        rank = fraction * (count - 1)
        low = math.floor(rank)
        wanted.append((rank, low, min(low + 1, count - 1)))
    ranks = sorted({n + 1 for _rank, low, high in wanted for n in (low, high)})
    numbered = rows.annotate(rank=Window(RowNumber(), order_by=F("took").asc()))
    values = dict(numbered.filter(rank__in=ranks).order_by().values_list("rank", "took"))
    result = []
    for rank, low, high in wanted:
        first: timedelta = values[low + 1]
        last: timedelta = values[high + 1]
        result.append(first + (last - first) * (rank - low))
    return result


# --- failures -------------------------------------------------------------------------------------


def _kind_rates(kinds: dict[str, dict[str, int]]) -> list[Rate]:
    rates = [
        Rate(kind, figures[Status.FAILED], sum(figures[s] for s in FINISHED))
        for kind, figures in kinds.items()
    ]
    return sorted(rates, key=lambda r: (-(r.rate or 0), r.label))


def _error_rates(tasks: Scan, window: tuple[datetime, datetime]) -> list[Rate]:
    """Failed tasks of the window per ``error["kind"]``, the most frequent first, each as a
    share of the finished tasks; past :data:`ERROR_KINDS_SHOWN` they are added up as "other".

    A query of its own, served by the partial index on ``created_at WHERE error IS NOT NULL``
    (in the scan's ``GROUP BY`` the JSON expression made PostgreSQL expect a group for every
    other row and sort 200k rows on disk instead of hashing: twice as slow)."""
    failed = sum(figures[Status.FAILED] for figures in tasks.kinds.values())
    if not failed:
        return []
    finished = sum(figures[s] for figures in tasks.kinds.values() for s in FINISHED)
    rows = (
        Task.objects.filter(
            # error IS NOT NULL: the partial index of migration 0008 holds these rows only
            error__isnull=False,
            status=Status.FAILED,
            created_at__gte=window[0],
            created_at__lt=window[1],
        )
        .annotate(
            error_kind=Coalesce(
                KeyTextTransform("kind", "error"), Value(""), output_field=TextField()
            )
        )
        .order_by()
        .values_list("error_kind")
        .annotate(n=Count("pk"))
    )
    counted = dict(rows)
    if failed > sum(counted.values()):  # failed with no error stored at all
        counted[""] = counted.get("", 0) + failed - sum(counted.values())
    ranked = sorted(counted.items(), key=lambda row: (-row[1], row[0]))
    rates = [Rate(kind or "unclassified", n, finished) for kind, n in ranked[:ERROR_KINDS_SHOWN]]
    rest = sum(n for _kind, n in ranked[ERROR_KINDS_SHOWN:])
    if rest:
        rates.append(Rate("other", rest, finished))
    return rates


# --- now ------------------------------------------------------------------------------------------


def _backlog(
    scan: Scan,
    rows: QuerySet[Any],
    window: tuple[datetime, datetime],
    statuses: Sequence[str],
    stuck: Q | None = None,
) -> dict[str, int]:
    """Unfinished rows by status: those created in the window as ``scan`` counted them, plus
    one query for the others (before the window, or dated after it). For tasks, that query also
    updates the scan's oldest stuck task."""
    figures = dict.fromkeys(statuses, 0)
    for counts in scan.days.values():
        for status in statuses:
            figures[status] += counts[status]
    outside = Q(created_at__lt=window[0]) | Q(created_at__gte=window[1])
    query = rows.filter(outside, status__in=list(statuses)).order_by().values("status")
    extra: dict[str, Any] = {"n": Count("pk")}
    if stuck is not None:
        extra["stuck_since"] = Min("updated_at", filter=stuck)
    for row in query.annotate(**extra):
        figures[row["status"]] += row["n"]
        since = row.get("stuck_since")
        if since is not None and (scan.stuck_since is None or since < scan.stuck_since):
            scan.stuck_since, scan.stuck_day = since, None
    return figures


def stuck_q(now: datetime, stale_after: timedelta) -> Q:
    """Unfinished tasks unchanged for ``stale_after``, except those waiting for a planned retry
    (``created`` with ``next_attempt_at`` still ahead): what resync would pick up."""
    parked = Q(status=Status.CREATED, next_attempt_at__gt=now)
    return Q(status__in=UNFINISHED, updated_at__lt=now - stale_after) & ~parked


def _oldest_stuck(tasks: Scan, stuck: Q, now: datetime) -> StuckTask | None:
    """The stuck task whose ``updated_at`` the scans found oldest, read by its creation time."""
    if tasks.stuck_since is None:
        return None
    rows = (
        Task.objects.filter(stuck, updated_at=tasks.stuck_since)
        .order_by("pk")
        .values("pk", "name", "kind", "remote_id", "uuid", "status", "updated_at")
    )
    # A row is created before it is last updated: an index range over the old rows.
    near = rows.filter(created_at__lte=tasks.stuck_since)
    if tasks.stuck_day is not None:  # the local day it was created on (an hour more for DST)
        near = near.filter(created_at__gte=_midnight(tasks.stuck_day) - timedelta(hours=1))
    row = near.first() or rows.first()  # the second only for hand-edited times
    if row is None:  # finished between the queries
        return None
    label = f"{row['name'] or row['kind']} {row['remote_id'] or row['uuid']}"
    return StuckTask(row["pk"], label, row["status"], row["updated_at"], now - row["updated_at"])
