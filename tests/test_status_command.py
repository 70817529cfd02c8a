"""``manage.py tapestry_media status``: what it reports, its JSON, and its exit code."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tapestry_media.models import Submission, Task, WebhookEvent
from tapestry_media.status import Status

pytestmark = pytest.mark.django_db

KEYS = {
    "checked_at",
    "stale_after_seconds",
    "tasks_by_status",
    "submissions_by_status",
    "backlog",
    "oldest_created",
    "oldest_submitting",
    "last_webhook",
    "failed_events",
    "stranded_jobs",
    "ok",
    "breaches",
}


def status(*args: str) -> tuple[dict[str, Any], int]:
    """The JSON report and the exit code the command would give."""
    out = StringIO()
    try:
        call_command("tapestry_media", "status", "--json", *args, stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return json.loads(out.getvalue()), code


def task(state: str = Status.CREATED, *, ago: timedelta = timedelta(0), **fields: Any) -> Task:
    row = Task.objects.create(kind="video", input="in.mp4", backend="dummy", status=state, **fields)
    Task.objects.filter(pk=row.pk).update(updated_at=timezone.now() - ago)
    return row


def event(key: str, *, ago: timedelta = timedelta(0), **fields: Any) -> WebhookEvent:
    row = WebhookEvent.objects.create(dedup_key=key, remote_task_id="task_1", body="{}", **fields)
    WebhookEvent.objects.filter(pk=row.pk).update(last_received_at=timezone.now() - ago)
    return row


def test_an_empty_site_is_ok_with_the_whole_shape() -> None:
    report, code = status()
    assert code == 0
    assert set(report) == KEYS
    assert report["ok"] is True
    assert report["breaches"] == []
    assert set(report["tasks_by_status"]) == set(Status.values)
    assert set(report["tasks_by_status"].values()) == {0}
    assert report["submissions_by_status"] == {
        "pending": 0,
        "processing": 0,
        "ready": 0,
        "partial": 0,
        "failed": 0,
    }
    assert report["oldest_created"] is None
    assert report["oldest_submitting"] is None
    assert report["last_webhook"] is None
    assert report["failed_events"] == {"count": 0, "oldest_received_at": None}
    assert report["stranded_jobs"] == {"count": 0, "task_ids": []}
    assert report["stale_after_seconds"] == 900


def test_backlog_by_status() -> None:
    submission = Submission.objects.create(file="x.mp4", media_kind="video")
    Task.objects.all().delete()  # the pipeline's own tasks
    Submission.objects.filter(pk=submission.pk).update(status="ready")
    for state, n in [(Status.CREATED, 2), (Status.SUBMITTING, 1), (Status.SUCCEEDED, 3)]:
        for _ in range(n):
            task(state)
    report, _ = status()
    assert report["tasks_by_status"]["created"] == 2
    assert report["tasks_by_status"]["submitting"] == 1
    assert report["tasks_by_status"]["succeeded"] == 3
    assert report["tasks_by_status"]["failed"] == 0
    assert report["submissions_by_status"]["ready"] == 1
    assert report["backlog"] == 3


def test_oldest_created_and_submitting_tasks() -> None:
    task(Status.CREATED, ago=timedelta(minutes=1))
    old = task(Status.CREATED, ago=timedelta(minutes=9), retries=2)
    task(Status.SUBMITTING, ago=timedelta(seconds=30))
    claimed = task(Status.SUBMITTING, ago=timedelta(minutes=3))
    task(Status.SUCCEEDED, ago=timedelta(days=3))
    report, code = status()
    assert report["oldest_created"]["id"] == old.pk
    assert report["oldest_created"]["retries"] == 2
    assert 539 < report["oldest_created"]["age_seconds"] < 560
    assert report["oldest_submitting"]["id"] == claimed.pk
    assert 179 < report["oldest_submitting"]["age_seconds"] < 200
    assert code == 0


def test_last_webhook_received() -> None:
    event("a", ago=timedelta(hours=2), topic="task.updated")
    event("b", ago=timedelta(minutes=5), topic="task.succeeded", source="local")
    report, _ = status()
    last = report["last_webhook"]
    assert (last["topic"], last["source"]) == ("task.succeeded", "local")
    assert 299 < last["age_seconds"] < 320


def test_failed_events_counted_and_the_exit_code_says_so() -> None:
    event("processed", processed_at=timezone.now())
    event("in-flight")  # not processed yet, no error: not failed
    report, code = status()
    assert (report["failed_events"]["count"], code) == (0, 0)

    event("broken", ago=timedelta(hours=1), error="boom")
    report, code = status()
    assert report["failed_events"]["count"] == 1
    assert report["failed_events"]["oldest_received_at"] is not None
    assert code == 1
    assert report["ok"] is False
    assert report["breaches"] == ["1 failed webhook event(s) > 0"]
    assert status("--max-failed-events", "1")[1] == 0


def test_stranded_jobs_are_created_tasks_due_long_ago(settings) -> None:
    stale = settings.TAPESTRY_MEDIA.get("STALE_AFTER", timedelta(minutes=15))
    fresh = task(Status.CREATED, ago=timedelta(minutes=1))
    deferred = task(  # a retry waiting for its backoff is not stranded
        Status.CREATED,
        ago=stale + timedelta(minutes=5),
        next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    task(Status.SUBMITTING, ago=stale + timedelta(minutes=5))
    report, code = status("--max-submitting-age", "off")
    assert report["stranded_jobs"] == {"count": 0, "task_ids": []}
    assert code == 0

    lost = task(Status.CREATED, ago=stale + timedelta(minutes=5))
    lost_retry = task(
        Status.CREATED,
        ago=stale + timedelta(minutes=30),
        next_attempt_at=timezone.now() - stale - timedelta(minutes=1),
    )
    report, code = status("--max-submitting-age", "off")
    assert report["stranded_jobs"] == {"count": 2, "task_ids": [lost_retry.pk, lost.pk]}
    assert fresh.pk not in report["stranded_jobs"]["task_ids"]
    assert deferred.pk not in report["stranded_jobs"]["task_ids"]
    assert code == 1
    assert "2 stranded submit job(s) > 0" in report["breaches"][0]
    assert status("--max-submitting-age", "off", "--max-stranded", "2")[1] == 0
    assert status("--max-submitting-age", "off", "--max-stranded", "off")[1] == 0


def test_submitting_age_threshold() -> None:
    task(Status.SUBMITTING, ago=timedelta(minutes=5))
    assert status()[1] == 0
    assert status("--max-submitting-age", "2m")[1] == 1
    task(Status.SUBMITTING, ago=timedelta(minutes=20))
    report, code = status()
    assert code == 1
    assert report["breaches"][0].endswith("> 900 s")


def test_webhook_silence_and_backlog_thresholds_are_off_by_default() -> None:
    assert status()[1] == 0
    assert status("--max-webhook-silence", "1h")[1] == 1  # never heard one
    event("old", ago=timedelta(hours=2))
    assert status("--max-webhook-silence", "1h")[1] == 1
    event("recent", ago=timedelta(minutes=10))
    assert status("--max-webhook-silence", "1h")[1] == 0

    task(Status.CREATED)
    task(Status.SUBMITTING)
    assert status("--max-backlog", "2")[1] == 0
    report, code = status("--max-backlog", "1")
    assert code == 1
    assert report["breaches"] == ["backlog 2 created/submitting > 1"]


@pytest.mark.parametrize(
    "args",
    [
        ["--max-stranded", "-1"],
        ["--max-stranded", "many"],
        ["--max-submitting-age", "soon"],
        ["--max-webhook-silence", "10"],
    ],
)
def test_bad_thresholds_are_refused(args: list[str]) -> None:
    with pytest.raises(CommandError, match="argument --max-"):
        call_command("tapestry_media", "status", *args, stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_the_process_exit_code(capsys) -> None:
    """Through ``manage.py``'s own entry point, as cron runs it (which closes the connections
    at the end, hence a transactional test)."""
    utility = ManagementUtility(["manage.py", "tapestry_media", "status"])
    utility.execute()  # healthy: returns, no SystemExit
    assert "ok" in capsys.readouterr().out.splitlines()[-1]

    task(Status.CREATED, ago=timedelta(hours=1))
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "tapestry_media", "status"]).execute()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "stranded jobs: 1" in captured.out
    assert "NOT OK" in captured.out
    assert "is a worker running" in captured.err


def test_text_report_names_each_figure() -> None:
    task(Status.CREATED, ago=timedelta(minutes=2))
    event("a", error="boom")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("tapestry_media", "status", stdout=out)
    text = out.getvalue()
    for label in (
        "tasks: created 1",
        "backlog (created + submitting): 1",
        "oldest created: task",
        "oldest submitting: none",
        "last webhook: ",
        "failed events: 1",
        "stranded jobs: 0",
    ):
        assert label in text, label


def test_queries_do_not_grow_with_rows() -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            status("--max-stranded", "off", "--max-failed-events", "off")
        return len(seen.captured_queries)

    task(Status.CREATED, ago=timedelta(hours=1))
    event("e0", error="boom")
    few = queries()
    for index in range(30):
        task(Status.CREATED, ago=timedelta(hours=1))
        task(Status.SUBMITTING)
        event(f"e{index + 1}", error="boom")
    assert queries() == few
    assert few <= 9
