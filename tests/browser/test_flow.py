"""End to end in headless Chromium: sign in, upload a clip with a campaign, watch it become
ready on the local engine, play the output, then find its task in admin by ``user_id``.

The DummyBackend keeps its queue per thread, and the upload is enqueued by the live server's
thread: a ``task_enqueued`` receiver collects jobs from every thread, and the test runs them
in its own thread between page checks. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tapestry_media.models import Submission, Task
from tapestry_media.status import Status
from tapestry_media.testing.jobs import clear_jobs

from ..media import make_clip
from .site import ARTIFACTS

try:
    from django.tasks.signals import task_enqueued
except ImportError:  # Django 5.2 and the django-tasks backport
    from django_tasks.signals import task_enqueued  # type: ignore[no-redef]


pytestmark = [pytest.mark.browser, pytest.mark.once]


READY_TIMEOUT = 180.0


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "beach-day.mp4", size="320x240", seconds=2)


class Jobs:
    """Jobs enqueued from any thread, run on demand in the test's thread."""

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.lock = threading.Lock()

    def __call__(self, sender: Any, task_result: Any, **kwargs: Any) -> None:
        with self.lock:
            self.queue.append(task_result)

    def run_due(self) -> int:
        from django.utils import timezone

        ran = 0
        with self.lock:
            batch = list(self.queue)
            self.queue.clear()
        for result in batch:
            run_after = result.task.run_after
            if run_after is not None and run_after > timezone.now():
                self(None, result)  # a deferred retry: not yet
                continue
            result.task.call(*result.args, **result.kwargs)
            ran += 1
        clear_jobs()  # this thread's own record of them
        return ran


@pytest.fixture
def jobs() -> Iterator[Jobs]:
    collector = Jobs()
    task_enqueued.connect(collector, weak=False, dispatch_uid="browser-test-jobs")
    yield collector
    task_enqueued.disconnect(dispatch_uid="browser-test-jobs")


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_until_ready(page: Any, jobs: Jobs) -> str:
    """Run queued jobs here while the page polls the API, until the page shows a final state."""
    deadline = time.monotonic() + READY_TIMEOUT
    status = ""
    while time.monotonic() < deadline:
        jobs.run_due()
        status = page.get_attribute("[data-submission-api]", "data-status") or ""
        if status in ("ready", "partial", "failed"):
            return status
        page.wait_for_timeout(250)
    return status


@pytest.mark.django_db(transaction=True)
def test_upload_watch_play_and_find_in_admin(
    browser, site, live_server, clip, jobs, user, admin_user
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)

    # sign in
    page.goto(f"{live_server.url}/accounts/login/?next=/upload/")
    shot(page, "01-sign-in")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click(".auth button[type=submit]")
    page.wait_for_url("**/upload/")

    # upload with a campaign
    page.set_input_files("input[type=file]", str(clip))
    page.fill("input[name=title]", "Beach day")
    page.fill("input[name=campaign]", "summer-launch")
    page.select_option("select[name=source]", "web")
    shot(page, "02-upload")
    page.click(".upload-form button[type=submit]")
    page.wait_for_url("**/submissions/sub_*/")
    submission = Submission.objects.get()
    assert (submission.uploader_id, submission.campaign) == (user.pk, "summer-launch")
    shot(page, "03-processing")

    # watch it reach "ready" (the page polls the JSON API by itself)
    status = wait_until_ready(page, jobs)
    failures = list(Task.objects.exclude(status=Status.SUCCEEDED).values("name", "error"))
    assert status == "ready", failures
    assert page.inner_text("[data-badge]") == "Ready"
    assert page.inner_text("[data-step=video] [data-step-status]") == "Done"

    # the player loads the processed video; the poster shows
    page.wait_for_function(
        "() => { const v = document.querySelector('#player');"
        " return v && v.readyState >= 1 && v.duration > 0; }"
    )
    media = page.evaluate(
        "() => { const v = document.querySelector('#player');"
        " return {readyState: v.readyState, duration: v.duration, src: v.currentSrc,"
        " poster: v.poster, width: v.videoWidth, error: v.error && v.error.code}; }"
    )
    assert media["readyState"] >= 1
    assert 1.5 < media["duration"] < 2.6, media
    assert "/media/tapestry_media/outputs/" in media["src"]
    assert media["poster"].endswith(".jpg"), media
    assert page.is_visible("[data-poster]")
    poster_loaded = page.evaluate(
        "() => { const i = document.querySelector('[data-poster]');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    assert poster_loaded
    page.evaluate(
        "() => new Promise(done => { const v = document.querySelector('#player');"
        " v.addEventListener('seeked', done, {once: true}); v.currentTime = 1; })"
    )
    shot(page, "04-ready")

    page.goto(f"{live_server.url}/submissions/")
    shot(page, "05-my-submissions")
    context.close()

    # staff find the task in admin by the uploader's user_id
    admin = browser.new_context(viewport={"width": 1680, "height": 900})
    page = admin.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", "password")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto(f"{live_server.url}/admin/tapestry_media/task/")
    page.fill("#searchbar", f"usr_{user.pk}")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/tapestry_media/task/?q=*")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    table = page.inner_text("#result_list")
    assert submission.public_id in table
    assert "summer-launch" in table
    shot(page, "06-admin-tasks-by-user-id")
    page.click("#result_list .field-step a:text-is('video')")
    page.wait_for_url("**/admin/tapestry_media/task/*/change/**")
    assert f'"user_id": "usr_{user.pk}"' in page.inner_text(".field-metadata_json")
    shot(page, "07-admin-task")
    page.go_back()
    page.click(f"#result_list tbody tr >> text={submission.public_id} >> nth=0")
    page.wait_for_url("**/admin/tapestry_media/submission/*/change/")
    assert page.locator("video.tm-preview").count() == 1
    shot(page, "08-admin-submission")
    page.goto(f"{live_server.url}/admin/tapestry_media/submission/")
    assert page.locator("#result_list .tm-badge-ok").count() == 1
    shot(page, "09-admin-submissions")
    admin.close()
