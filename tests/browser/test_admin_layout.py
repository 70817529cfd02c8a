"""The admin's task list at 1280 px: the metadata columns are on screen, one line a row."""

from __future__ import annotations

from typing import Any

import pytest

from tapestry_media.models import Submission, Task
from tapestry_media.status import Status

from .site import ARTIFACTS, admin_page

pytestmark = [pytest.mark.browser, pytest.mark.once, pytest.mark.django_db(transaction=True)]


def test_task_list_metadata_columns_fit_beside_both_sidebars(
    browser: Any, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright keeps an event loop in this thread; the ORM calls here are synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    for n in range(3):  # each upload gets the pipeline's two tasks
        Submission.objects.create(
            file=f"tapestry_media/uploads/clip{n}.mp4", campaign="summer-launch", media_kind="video"
        )
    for n, task in enumerate(Task.objects.all()):
        Task.objects.filter(pk=task.pk).update(
            status=Status.SUCCEEDED,
            remote_id=f"task_{n:02d}7ba8ab6e602848e1b99f2c4d",
            metadata={**task.metadata, "user_id": "usr_361"},
        )
    page = admin_page(browser, live_server.url, "/admin/tapestry_media/task/")
    page.wait_for_selector("#result_list")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-tasks-1280.png"))

    visible_right = page.evaluate(
        "document.querySelector('.results').getBoundingClientRect().right"
    )
    for column in ("user_id", "campaign", "submission_link"):
        cells = page.locator(f"#result_list td.field-{column}")
        assert cells.count() == 6  # 3 uploads x 2 steps
        box = cells.first.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= visible_right, f"{column} is off screen"
    heights = page.evaluate(
        "[...document.querySelectorAll('#result_list tbody tr')].map(r => r.offsetHeight)"
    )
    assert len(set(heights)) == 1, heights  # no row wraps onto a second line
    assert "summer-launch" in page.locator("#result_list td.field-campaign").first.inner_text()
