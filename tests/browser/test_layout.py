"""The example site as people use it, at a desktop (1280 px) and a phone (390 px) width: no
horizontal scroll, status badges inside their cards, a portrait video in a portrait box, the
"processing has started" message gone once the upload is final, empty bars for queued steps,
and a seek that lands in a clip of over 5 MB served with HTTP Range (``preload="metadata"``).

Screenshots go to ``test-artifacts/layout-*.png``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tapestry_media import aggregate
from tapestry_media.local.engine import find_ffmpeg
from tapestry_media.models import Submission
from tapestry_media.status import Status

from ..media import make_clip
from .site import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.once]

WIDTHS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
LONG_TITLE = "Sunset over the harbour with the whole family, take two"
SEEK_TO = 7.0


def outputs_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "tapestry_media" / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def portrait() -> tuple[str, str]:
    """A 720x1280 clip of 10 s and over 5 MB (keyframe each second), and its poster."""
    video = outputs_dir() / "portrait.mp4"
    subprocess.run(
        [find_ffmpeg(), "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=720x1280:rate=25", "-t", "10",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-g", "25",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(video)],
        check=True,
    )  # fmt: skip
    assert video.stat().st_size > 5 * 1024 * 1024, video.stat().st_size
    poster = outputs_dir() / "portrait.jpg"
    subprocess.run(
        [find_ffmpeg(), "-v", "error", "-nostdin", "-y", "-i", str(video), "-frames:v", "1",
         str(poster)],
        check=True,
    )  # fmt: skip
    return (
        "/media/tapestry_media/outputs/portrait.mp4",
        "/media/tapestry_media/outputs/portrait.jpg",
    )


def finish(submission: Submission, **urls: str) -> None:
    """Mark the named steps done with these output URLs, as the engine would, and the rest
    of the steps failed when ``urls`` is empty."""
    for task in submission.tasks.all():
        if urls:
            task.status, task.output_url, task.progress = Status.SUCCEEDED, urls[task.name], 100
        else:
            task.status, task.error = Status.FAILED, {"message": "the engine gave up"}
        task.save()
    aggregate.refresh(submission.pk, submission.file_generation)


def no_horizontal_scroll(page: Any) -> None:
    widths = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth,"
        " client: document.documentElement.clientWidth})"
    )
    assert widths["scroll"] <= widths["client"], (page.url, widths)


def badges_inside_cards(page: Any) -> int:
    boxes = page.evaluate(
        "() => [...document.querySelectorAll('.submission-card')].map(card => {"
        " const c = card.getBoundingClientRect(), b = card.querySelector('[data-badge]')"
        ".getBoundingClientRect();"
        " return {card: [c.left, c.right, c.top, c.bottom], badge: [b.left, b.right, b.top,"
        " b.bottom], text: card.querySelector('[data-badge]').textContent}; })"
    )
    for box in boxes:
        (cl, cr, ct, cb), (bl, br, bt, bb) = box["card"], box["badge"]
        assert cl <= bl, box
        assert br <= cr, box
        assert ct <= bt, box
        assert bb <= cb, box
        assert br - bl > 30, box  # the whole label shows, not a sliver
    return len(boxes)


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click(".auth button[type=submit]")
    page.wait_for_url(f"{base}/submissions/")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_pages_at_desktop_and_phone_width(
    browser, site, live_server, user, portrait, width, tmp_path
) -> None:
    video_url, poster_url = portrait
    upload = make_clip(tmp_path / "harbour.mp4", seconds=1)
    context = browser.new_context(viewport=WIDTHS[width])
    page = context.new_page()
    page.set_default_timeout(20_000)
    base = live_server.url
    video_answers: list[tuple[int, str]] = []
    page.on(
        "response",
        lambda r: (
            video_answers.append((r.status, r.headers.get("content-range", "")))
            if r.url.endswith(video_url)
            else None
        ),
    )

    page.goto(f"{base}/")
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"layout-{width}-home.png"), full_page=True)
    icon = page.request.get(f"{base}/favicon.ico")
    assert (icon.status, icon.headers["content-type"]) == (200, "image/svg+xml")
    sign_in(page, base)

    # upload through the form: the flash says processing started, the steps are queued
    page.goto(f"{base}/upload/")
    no_horizontal_scroll(page)
    page.set_input_files("input[type=file]", str(upload))
    page.fill("input[name=title]", LONG_TITLE)
    page.click(".upload-form button[type=submit]")
    page.wait_for_url("**/submissions/sub_*/")
    assert page.locator('[data-flash~="processing"]').count() == 1
    queued = page.evaluate(
        "() => [...document.querySelectorAll('.step-created, .step-submitting, .step-pending')]"
        ".map(s => s.querySelector('.progress span'))"
        ".map(s => s.getBoundingClientRect().width)"
    )
    assert queued, "no queued step on the page"
    assert all(w == 0 for w in queued), queued
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"layout-{width}-queued.png"), full_page=True)

    # it finishes (here: the portrait clip as its output); the page's poll catches up
    first = Submission.objects.get()
    finish(first, video=video_url, poster=poster_url)
    page.wait_for_function("() => document.querySelector('[data-badge]').textContent === 'Ready'")
    assert page.locator('[data-flash~="processing"]').count() == 0
    assert page.locator(".flash").count() == 0

    # a portrait video gets a portrait box, and a seek lands (HTTP Range, preload=metadata)
    assert page.get_attribute("#player", "preload") == "metadata"
    page.wait_for_function(
        "() => { const v = document.querySelector('#player'); return v.readyState >= 1"
        " && document.querySelector('.player').classList.contains('is-portrait'); }"
    )
    box = page.locator(".player").bounding_box()
    assert box["height"] > box["width"], box
    landed = page.evaluate(
        "(to) => new Promise(done => { const v = document.querySelector('#player');"
        " v.addEventListener('seeked', () => done(v.currentTime), {once: true});"
        " v.currentTime = to; })",
        SEEK_TO,
    )
    assert abs(landed - SEEK_TO) < 0.5, landed
    # the player read the clip in pieces: the seek asked for (and got) bytes from the middle
    mid_file = [
        cr for status, cr in video_answers if status == 206 and not cr.startswith("bytes 0-")
    ]
    assert mid_file, video_answers
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"layout-{width}-ready.png"), full_page=True)

    # the list: a long title does not push its badge out of the card
    second = Submission.objects.create(uploader=user, file=upload.name, title=LONG_TITLE * 2)
    finish(second)
    Submission.objects.create(uploader=user, file=upload.name, title="Short")
    page.goto(f"{base}/submissions/")
    assert badges_inside_cards(page) == 3
    no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"layout-{width}-list.png"), full_page=True)
    context.close()
