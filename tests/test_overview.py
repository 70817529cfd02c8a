"""The admin overview: its figures for a small dataset with known times, the page, its charts
(well-formed SVG whose bars are the table's numbers), its permission and its query count."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tapestry_media import overview
from tapestry_media.models import Submission, SubmissionStatus, Task
from tapestry_media.status import Status

from .helpers import app_alias

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_network")]

OVERVIEW = reverse("admin:tapestry_media_task_overview")
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def submission(created: datetime, status: str, took: float | None = None) -> Submission:
    """A row with these times, without the pipeline's tasks (bulk_create sends no signal)."""
    (row,) = Submission.objects.bulk_create(
        [Submission(file="tapestry_media/uploads/x/clip.mp4", status=status)]
    )
    processed = created + timedelta(seconds=took) if took is not None else None
    Submission.objects.filter(pk=row.pk).update(
        created_at=created, updated_at=processed or created, processed_at=processed
    )
    return row


def task(
    created: datetime,
    status: str,
    kind: str = "video",
    *,
    error: dict[str, str] | None = None,
    updated: datetime | None = None,
    next_attempt: datetime | None = None,
) -> Task:
    (row,) = Task.objects.bulk_create(
        [Task(kind=kind, input="https://example.com/a.mp4", backend="dummy", status=status)]
    )
    Task.objects.filter(pk=row.pk).update(
        created_at=created,
        updated_at=updated or created,
        error=error,
        next_attempt_at=next_attempt,
    )
    return row


@pytest.fixture
def dataset() -> dict[str, Any]:
    minutes = lambda n: NOW - timedelta(minutes=n)  # noqa: E731
    days = lambda n: NOW - timedelta(days=n)  # noqa: E731
    submission(minutes(10), SubmissionStatus.READY, 60)
    submission(minutes(10), SubmissionStatus.READY, 120)
    submission(minutes(120), SubmissionStatus.READY, 300)
    submission(minutes(120), SubmissionStatus.FAILED, 30)
    submission(days(3), SubmissionStatus.READY, 600)
    submission(days(40), SubmissionStatus.PROCESSING)  # before the window: backlog only
    submission(minutes(20), SubmissionStatus.PROCESSING)
    submission(minutes(26 * 60), SubmissionStatus.PARTIAL, 45)  # in 30 days, not in 24 h
    rows = {
        "t1": task(minutes(10), Status.SUCCEEDED),
        "t2": task(minutes(10), Status.FAILED, error={"kind": "timeout", "message": "slow"}),
        "t3": task(minutes(120), Status.FAILED, "image", error={"kind": "decode_error"}),
        "t4": task(minutes(120), Status.SUCCEEDED, "image"),
        "t5": task(days(3), Status.FAILED, error={"message": "no kind"}),
        "t6": task(days(3), Status.CANCELLED),
        # stuck for 39 days, created before the window: the oldest stuck task
        "t7": task(days(40), Status.PROCESSING, updated=days(39)),
        # stuck (STALE_AFTER is 15 minutes) and created in the window
        "t8": task(minutes(60), Status.PENDING, "image", updated=minutes(50)),
        # waiting for a planned retry: unfinished, not stuck
        "t9": task(minutes(120), Status.CREATED, next_attempt=NOW + timedelta(minutes=10)),
        "t10": task(days(3), Status.SUPERSEDED),
        "t11": task(minutes(5), Status.SUBMITTING, "audio"),  # fresh
    }
    return rows


def hour_index(figures: overview.Overview, hour: int) -> int:
    starts = [s.hour for s in figures.uploads_hourly.starts]
    return starts.index(hour)


def test_buckets_per_hour_and_per_day(dataset) -> None:
    figures = overview.collect(NOW)
    hourly = figures.uploads_hourly
    assert len(hourly.starts) == 24
    assert hourly.starts[-1] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert hourly.starts[0] == datetime(2026, 3, 9, 13, tzinfo=UTC)
    at12, at10 = hour_index(figures, 12), hour_index(figures, 10)
    assert hourly.counts["ready"][at12] == 2
    assert hourly.counts["processing"][at12] == 1
    assert hourly.counts["ready"][at10] == 1
    assert hourly.counts["failed"][at10] == 1
    assert sum(hourly.totals()) == 5  # not the partial one (26 h ago), nor the 40 days old one

    daily = figures.uploads_daily
    assert len(daily.starts) == 30
    assert daily.starts[-1] == datetime(2026, 3, 10, tzinfo=UTC)
    assert daily.starts[0] == datetime(2026, 2, 9, tzinfo=UTC)
    assert daily.counts["ready"][-1] == 3
    assert daily.counts["failed"][-1] == 1
    assert daily.counts["partial"][-2] == 1  # 9 March
    assert daily.counts["ready"][-4] == 1  # 7 March
    assert sum(daily.totals()) == 7

    tasks = figures.tasks_hourly
    assert [tasks.counts[s][at12] for s in ("succeeded", "failed", "submitting")] == [1, 1, 1]
    assert tasks.counts["pending"][hour_index(figures, 11)] == 1
    assert [tasks.counts[s][at10] for s in ("succeeded", "failed", "created")] == [1, 1, 1]
    assert sum(tasks.totals()) == 7
    days = figures.tasks_daily
    assert [days.counts[s][-4] for s in ("failed", "cancelled", "superseded")] == [1, 1, 1]
    assert sum(days.totals()) == 10  # all but the 40 days old one


def test_upload_to_ready_percentiles_interpolate_like_percentile_cont(dataset) -> None:
    submission(NOW - timedelta(days=10), SubmissionStatus.READY, 9999)  # older than a week
    last_day, week = overview.collect(NOW).ready_times
    # 60, 120, 300 s: median 120; p95 at rank 1.9, 120 + 0.9 * 180
    assert (last_day.count, last_day.median, last_day.p95) == (
        3,
        timedelta(seconds=120),
        timedelta(seconds=282),
    )
    # 60, 120, 300, 600 s (3 days ago): median at rank 1.5; p95 at rank 2.85, 300 + 0.85 * 300
    assert week.window == "last 7 days"
    assert (week.count, week.median, week.p95) == (
        4,
        timedelta(seconds=210),
        timedelta(seconds=555),
    )


def test_failure_rates_by_kind_and_by_error_kind(dataset) -> None:
    figures = overview.collect(NOW)
    by_kind = {r.label: (r.failed, r.finished) for r in figures.failures_by_kind}
    # video: failed t2, t5 of t1, t2, t5, t6 (cancelled ends a task too; superseded does not)
    assert by_kind == {"video": (2, 4), "image": (1, 2), "audio": (0, 0)}
    assert {r.label: r.rate for r in figures.failures_by_kind}["audio"] is None
    by_error = {r.label: (r.failed, r.finished) for r in figures.failures_by_error}
    assert by_error == {"timeout": (1, 6), "decode_error": (1, 6), "unclassified": (1, 6)}


def test_a_failed_task_without_a_stored_error_is_unclassified(dataset) -> None:
    task(NOW - timedelta(hours=1), Status.FAILED, error=None)
    by_error = {r.label: (r.failed, r.finished) for r in overview.collect(NOW).failures_by_error}
    assert by_error["unclassified"] == (2, 7)  # and t5, whose error names no kind


def test_error_kinds_past_the_shown_ones_add_up_as_other(dataset) -> None:
    for n in range(overview.ERROR_KINDS_SHOWN + 2):
        task(NOW - timedelta(hours=1), Status.FAILED, error={"kind": f"rare_{n:02d}"})
    rates = overview.collect(NOW).failures_by_error
    assert len(rates) == overview.ERROR_KINDS_SHOWN + 1
    assert rates[-1].label == "other"
    assert sum(r.failed for r in rates) == 3 + overview.ERROR_KINDS_SHOWN + 2


def test_backlog_counts_unfinished_rows_inside_and_outside_the_window(dataset) -> None:
    figures = overview.collect(NOW)
    assert figures.task_backlog == {"created": 1, "submitting": 1, "pending": 1, "processing": 1}
    assert figures.submission_backlog == {"pending": 0, "processing": 2}


def test_oldest_stuck_task_outside_then_inside_the_window(dataset) -> None:
    stuck = overview.collect(NOW).oldest_stuck
    assert stuck is not None
    assert stuck.pk == dataset["t7"].pk
    assert stuck.age == timedelta(days=39)
    Task.objects.filter(pk=dataset["t7"].pk).update(status=Status.SUCCEEDED)
    stuck = overview.collect(NOW).oldest_stuck
    assert stuck is not None
    assert stuck.pk == dataset["t8"].pk
    Task.objects.filter(pk=dataset["t8"].pk).update(status=Status.SUCCEEDED)
    assert overview.collect(NOW).oldest_stuck is None


def test_oldest_stuck_task_with_an_update_time_before_its_creation(dataset) -> None:
    # hand-edited times: the lookup by creation time misses it, the plain one finds it
    Task.objects.filter(pk=dataset["t7"].pk).update(created_at=NOW - timedelta(days=2))
    stuck = overview.collect(NOW).oldest_stuck
    assert stuck is not None
    assert stuck.pk == dataset["t7"].pk


def test_buckets_follow_the_time_zone(settings) -> None:
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: local hours start at :30 UTC
    submission(datetime(2026, 3, 10, 6, 45, tzinfo=UTC), SubmissionStatus.READY, 10)  # 12:15
    submission(datetime(2026, 3, 9, 20, 0, tzinfo=UTC), SubmissionStatus.READY, 10)  # 01:30
    figures = overview.collect(NOW)  # 18:00 in Kolkata
    if figures.unconverted_zone:  # MySQL/MariaDB without time zone tables: UTC, and said so
        assert not connections[app_alias()].features.has_zoneinfo_database
        assert (figures.zone, figures.unconverted_zone) == ("UTC", "Asia/Kolkata")
        assert figures.uploads_daily.counts["ready"][-2:] == [1, 1]  # 9 and 10 March in UTC
        return
    assert figures.zone == "Asia/Kolkata"
    hourly = figures.uploads_hourly
    noon = [s.hour for s in hourly.starts].index(12)
    assert hourly.starts[noon].utcoffset() == timedelta(hours=5, minutes=30)
    assert hourly.counts["ready"][noon] == 1
    assert figures.uploads_daily.counts["ready"][-1] == 2  # both on 10 March in Kolkata


def test_hours_and_days_across_a_dst_change(settings) -> None:
    settings.TIME_ZONE = "America/New_York"  # clocks went forward at 02:00 on 8 March 2026
    now = datetime(2026, 3, 9, 4, 0, tzinfo=UTC)  # 00:00 EDT on 9 March
    hours = [h.astimezone(UTC) for h in overview.hour_starts(now, 24)]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    local = overview.hour_starts(now, 24)
    assert [h.hour for h in local[:4]] == [0, 1, 3, 4]  # no 02:00 on 8 March
    days = overview.day_starts(now, 3)
    assert [d.day for d in days] == [7, 8, 9]
    assert days[2].astimezone(UTC) - days[1].astimezone(UTC) == timedelta(hours=23)


# --- the page ---------------------------------------------------------------------------------


CARD = re.compile(r'<section class="tm-chart-card"[^>]*data-chart="([^"]+)">(.*?)</section>', re.S)


def parse(pattern: str, text: str) -> ET.Element:
    match = re.search(pattern, text, re.S)
    assert match is not None, pattern
    return ET.fromstring(match.group(0))  # noqa: S314 - the page this test just rendered


def charts_of(html: str) -> dict[str, tuple[ET.Element, ET.Element]]:
    """Each chart's SVG and table, parsed as XML: a parse error fails the test."""
    return {
        card.group(1): (parse(r"<svg.*?</svg>", card.group(2)), parse(r"<table>.*?</table>",
                                                                      card.group(2)))
        for card in CARD.finditer(html)
    }  # fmt: skip


def table_rows(table: ET.Element) -> tuple[list[str], list[list[str]]]:
    headers = [th.get("data-key", "") for th in table.iter("th") if th.get("scope") == "col"]
    body = table.find("tbody")
    assert body is not None
    rows = [[(cell.text or "") for cell in tr] for tr in body]
    return headers, rows


def test_page_charts_are_well_formed_and_their_bars_are_the_tables_numbers(
    admin_client, dataset
) -> None:
    # the dataset's times are fixed; shift them to now, so the page (which uses the clock) sees
    # the same figures
    shift = datetime.now(UTC) - NOW
    moved = {name: F(name) + shift for name in ("created_at", "updated_at")}
    Submission.objects.update(**moved, processed_at=F("processed_at") + shift)
    Task.objects.update(**moved, next_attempt_at=F("next_attempt_at") + shift)
    response = admin_client.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    charts = charts_of(html)
    assert set(charts) == {
        "uploads-hourly", "tasks-hourly", "uploads-daily", "tasks-daily", "ready-times",
        "failures-by-kind", "failures-by-error", "backlog",
    }  # fmt: skip
    for chart_id, (svg, table) in charts.items():
        assert svg.get("role") == "img"
        title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
        assert title is not None
        assert title.text
        assert desc is not None
        assert desc.text
        assert svg.get("aria-labelledby") == f"{chart_id}-title {chart_id}-desc"
        bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "tm-bar"]
        assert bars, f"{chart_id} draws no bar"
        headers, rows = table_rows(table)
        if chart_id.endswith(("hourly", "daily")):
            columns = {key: i for i, key in enumerate(headers)}
            for bar in bars:
                column = columns[bar.get("data-series", "")]
                assert rows[int(bar.get("data-index", ""))][column] == bar.get("data-value")
            drawn = sum(float(b.get("data-value", "")) for b in bars)
            assert drawn == sum(int(row[-1]) for row in rows)
            # heights are proportional to the values
            ratios = {round(float(b.get("height", "")) / float(b.get("data-value", "")), 3)
                      for b in bars}  # fmt: skip
            assert len(ratios) == 1, ratios
    _headers, backlog = table_rows(charts["backlog"][1])
    backlog_bars = {b.get("data-series"): b.get("data-value")
                    for b in charts["backlog"][0].iter(f"{SVG}rect")}  # fmt: skip
    assert backlog_bars == {"task-created": "1", "task-submitting": "1", "task-pending": "1",
                            "task-processing": "1", "upload-processing": "2"}  # fmt: skip
    assert ["uploads", "Processing", "2"] in backlog
    _headers, errors = table_rows(charts["failures-by-error"][1])
    assert sorted(row[0] for row in errors) == ["decode_error", "timeout", "unclassified"]
    stuck_url = reverse("admin:tapestry_media_task_change", args=[dataset["t7"].pk])
    assert f'href="{stuck_url}"' in html


def test_empty_page_renders(admin_client) -> None:
    response = admin_client.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No uploads in this period." in html
    assert "No failed tasks in this period." in html
    assert "None: no unfinished task has gone" in html
    for svg, _table in charts_of(html).values():
        assert not [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "tm-bar"]


def test_linked_from_the_app_index_and_both_changelists(admin_client) -> None:
    for url in (
        reverse("admin:app_list", args=["tapestry_media"]),
        reverse("admin:tapestry_media_task_changelist"),
        reverse("admin:tapestry_media_submission_changelist"),
    ):
        assert f'href="{OVERVIEW}"' in admin_client.get(url).content.decode(), url


def test_permission(client, django_user_model) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw")
    client.force_login(user)
    response = client.get(OVERVIEW)  # not staff: the admin's login page
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    user.is_staff = True
    user.save()
    assert client.get(OVERVIEW).status_code == 403
    changelist = client.get(reverse("admin:tapestry_media_task_changelist"))
    user.user_permissions.add(Permission.objects.get(codename="view_task"))
    assert client.get(OVERVIEW).status_code == 403  # tasks only: not enough
    assert (
        f'href="{OVERVIEW}"'
        not in client.get(reverse("admin:tapestry_media_task_changelist")).content.decode()
    )
    del changelist
    user.user_permissions.add(Permission.objects.get(codename="view_submission"))
    response = client.get(OVERVIEW)
    assert response.status_code == 200
    assert b"Processing overview" in response.content


def test_query_count_is_fixed_whatever_the_number_of_rows(admin_client) -> None:
    now = datetime.now(UTC)

    def rows(count: int) -> None:
        for n in range(count):
            submission(now - timedelta(hours=n, minutes=1), SubmissionStatus.READY, 30 + n)
            task(now - timedelta(hours=n, minutes=1), Status.FAILED, error={"kind": f"k{n % 12}"})
            task(now - timedelta(days=40 + n), Status.PENDING)  # stuck, before the window

    rows(1)
    admin_client.get(OVERVIEW)
    app = connections[app_alias()]
    with CaptureQueriesContext(app) as small:
        assert admin_client.get(OVERVIEW).status_code == 200
    # the page's own (every one runs: nothing is empty) plus the user, and the session where
    # it is (``default``, another alias under a database router)
    assert len(small) == overview.QUERIES + 1 + (app.alias == DEFAULT_DB_ALIAS)
    rows(60)
    with CaptureQueriesContext(app) as large:
        assert admin_client.get(OVERVIEW).status_code == 200
    assert len(large) <= len(small)


def test_without_time_zones(settings, admin_client) -> None:
    settings.USE_TZ = False
    now = datetime.now()  # naive local time: what USE_TZ = False stores
    submission(now - timedelta(minutes=30), SubmissionStatus.READY, 90)
    task(now - timedelta(days=2), Status.PROCESSING, updated=now - timedelta(days=2))
    figures = overview.collect()
    assert sum(figures.uploads_hourly.totals()) == 1
    assert figures.ready_times[0].median == timedelta(seconds=90)
    assert figures.oldest_stuck is not None
    assert admin_client.get(OVERVIEW).status_code == 200
