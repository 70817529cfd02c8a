"""The example site's player on a private S3 bucket (moto on 127.0.0.1): every poll of the API
signs the video's URL afresh, and the page must not swap (and so restart) the playing video for
the same file under a new signature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tapestry_media.models import Submission, SubmissionStatus, Task
from tapestry_media.status import Status

from ..media import make_clip
from ..s3 import S3Server, running_server, use_s3
from .site import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.once]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    yield from running_server()


@pytest.mark.django_db(transaction=True)
def test_polling_keeps_the_video_whose_url_was_signed_again(
    browser, site, live_server, s3, settings, user, tmp_path
) -> None:
    use_s3(settings, s3, s3.new_bucket(), expire=300)
    clip = make_clip(tmp_path / "clip.mp4", seconds=1)
    name = default_storage.save(
        "tapestry_media/outputs/task_x/clip.mp4", ContentFile(clip.read_bytes())
    )
    sub = Submission.objects.create(uploader=user, file=ContentFile(b"clip", name="in.mp4"))
    # The video is done, the poster still processing: the page keeps polling the API.
    Task.objects.filter(submission=sub, name="video").update(
        status=Status.SUCCEEDED, progress=100, output={"storage_name": name}
    )
    Task.objects.filter(submission=sub, name="poster").update(status=Status.PROCESSING, progress=40)
    Submission.objects.filter(pk=sub.pk).update(status=SubmissionStatus.PROCESSING)

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click(".auth button[type=submit]")
    page.wait_for_url(f"{live_server.url}/**")

    polled: list[Any] = []
    page.on("response", lambda r: polled.append(r) if r.request.resource_type == "fetch" else None)
    page.goto(f"{live_server.url}/submissions/{sub.public_id}/")
    shown = page.get_attribute("#player", "src") or ""
    assert name in shown
    assert s3.endpoint in shown
    page.wait_for_function(
        "() => { const v = document.querySelector('#player'); return v.readyState >= 1; }"
    )
    for _ in range(3):
        with page.expect_response(lambda r: r.request.resource_type == "fetch"):
            pass
    page.wait_for_timeout(200)  # the last response rendered

    given = [r.json()["outputs"]["video"] for r in polled if sub.public_id in r.url]
    assert len(given) >= 3
    assert all(url.split("?")[0] == shown.split("?")[0] for url in given)
    assert shown not in given  # each poll signed the URL again ...
    assert page.get_attribute("#player", "src") == shown  # ... and the player kept its video
    page.screenshot(path=str(ARTIFACTS / "private-storage-player.png"))
    context.close()
