"""The admin overview in Chromium at 1280 px: every chart draws bars, the page is screenshotted."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tapestry_media.models import Submission, SubmissionStatus, Task
from tapestry_media.status import Status

from .site import ARTIFACTS, admin_page

pytestmark = [pytest.mark.browser, pytest.mark.once, pytest.mark.django_db(transaction=True)]

CHARTS = 8
ERRORS = ["decode_error", "timeout", "invalid_input", "step_failed", ""]


def seed(uploads: int = 400) -> None:
    """``uploads`` over 30 days (denser in the last day), two tasks each, a few failures of
    several error kinds, some in flight and one stuck task."""
    rng = random.Random(15)
    now = timezone.now()
    subs = Submission.objects.bulk_create(
        [Submission(file=f"tapestry_media/uploads/{n}/clip.mp4") for n in range(uploads)]
    )
    tasks = []
    for n, sub in enumerate(subs):
        back = timedelta(hours=rng.uniform(0, 24)) if n % 3 else timedelta(days=rng.uniform(0, 30))
        sub.created_at = now - back
        roll = rng.random()
        sub.status = (
            SubmissionStatus.PROCESSING if back < timedelta(minutes=20) else
            SubmissionStatus.FAILED if roll < 0.06 else
            SubmissionStatus.PARTIAL if roll < 0.1 else SubmissionStatus.READY
        )  # fmt: skip
        took = timedelta(seconds=rng.lognormvariate(4.5, 0.6))
        done = sub.status != SubmissionStatus.PROCESSING
        sub.processed_at = sub.created_at + took if done else None
        sub.updated_at = sub.processed_at or sub.created_at
        for step, kind in enumerate(("video", "image")):
            failed = sub.status == SubmissionStatus.FAILED and step == 0
            failed = failed or (sub.status == SubmissionStatus.PARTIAL and step == 1)
            status = (
                Status.PROCESSING if not done else Status.FAILED if failed else Status.SUCCEEDED
            )
            tasks.append(
                Task(
                    submission=sub, name=kind, kind=kind, input=sub.file.name, backend="dummy",
                    status=status, created_at=sub.created_at, updated_at=sub.updated_at,
                    error={"kind": rng.choice(ERRORS), "message": "failed"} if failed else None,
                )
            )  # fmt: skip
    Submission.objects.bulk_update(subs, ["created_at", "status", "processed_at", "updated_at"])
    made = Task.objects.bulk_create(tasks)
    for row in made:  # bulk_create stamps the clock; put the seeded times back
        row.created_at = row.submission.created_at
        row.updated_at = row.submission.updated_at
    made[0].status, made[0].updated_at = Status.PENDING, now - timedelta(hours=5)  # stuck
    Task.objects.bulk_update(made, ["created_at", "updated_at", "status"])


def test_overview_charts_all_draw_bars_at_1280(
    browser: Any, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    seed()
    page = admin_page(browser, live_server.url, "/admin/tapestry_media/task/overview/")
    page.wait_for_selector("svg.tm-chart")
    shot = tmp_path / "admin-overview-1280.png"
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / shot.name).write_bytes(shot.read_bytes())

    drawn = page.evaluate(
        """() => [...document.querySelectorAll('svg.tm-chart')].map(svg => [svg.id,
              [...svg.querySelectorAll('rect.tm-bar')].filter(r => {
                  const box = r.getBoundingClientRect(); return box.width > 0 && box.height > 0;
              }).length])"""
    )
    assert len(drawn) == CHARTS
    assert all(bars > 0 for _chart, bars in drawn), drawn
    # the charts sit two by two: the page is not a single long column at 1280 px
    lefts = page.evaluate(
        "[...document.querySelectorAll('.tm-chart-card')].map(c => c.getBoundingClientRect().x)"
    )
    assert len(set(round(x) for x in lefts)) == 2, lefts
    assert page.locator(".tm-stuck a").count() == 1  # the stuck task, linked
    page.locator(".tm-stuck a").click()
    page.wait_for_selector("#task_form")
