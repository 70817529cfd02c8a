"""The default pipeline bounds the long side at 1280 and never upscales (real ffmpeg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tapestry_media.conf import Settings
from tapestry_media.local.engine import find_ffmpeg, probe, run_operation
from tapestry_media.models import Submission
from tapestry_media.testing.jobs import enqueued_names, run_jobs

from .media import clip_upload, make_clip

STEPS = {step["name"]: step for steps in Settings().PIPELINE.values() for step in steps}


def _ffmpeg(*args: str) -> None:
    subprocess.run([find_ffmpeg(), "-v", "error", "-nostdin", "-y", *args], check=True)


def _still(path: Path, size: str) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}", "-frames:v", "1", str(path))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("portrait")
    landscape = make_clip(root / "landscape.mp4", size="1920x1080", seconds=1.2, rate=2)
    rotated = root / "rotated.mp4"
    _ffmpeg("-display_rotation", "90", "-i", str(landscape), "-c", "copy", str(rotated))
    return {
        "portrait": make_clip(root / "portrait.mp4", size="1080x1920", seconds=1.2, rate=2),
        "rotated": rotated,
        "landscape": landscape,
        "small": make_clip(root / "small.mp4", size="320x180", seconds=1.2, rate=2),
        "portrait_still": _still(root / "portrait.png", "1080x1920"),
        "landscape_still": _still(root / "landscape.png", "1920x1080"),
        "small_still": _still(root / "small.png", "320x180"),
    }


def test_every_default_picture_step_is_a_long_side_box() -> None:
    for name in ("video", "poster", "image"):
        options = STEPS[name]["options"]
        assert (options["width"], options["height"], options["fit"]) == (1280, 1280, "contain")


@pytest.mark.parametrize(
    ("source", "step", "expected"),
    [
        ("portrait", "video", (720, 1280)),
        ("rotated", "video", (720, 1280)),
        ("landscape", "video", (1280, 720)),
        ("small", "video", (320, 180)),
        ("portrait", "poster", (720, 1280)),
        ("rotated", "poster", (720, 1280)),
        ("landscape", "poster", (1280, 720)),
        ("small", "poster", (320, 180)),
        ("portrait_still", "image", (720, 1280)),
        ("landscape_still", "image", (1280, 720)),
        ("small_still", "image", (320, 180)),
    ],
)
def test_default_step_bounds_the_long_side(
    media: dict[str, Path], tmp_path: Path, source: str, step: str, expected: tuple[int, int]
) -> None:
    spec = STEPS[step]
    result = run_operation(spec["kind"], media[source], tmp_path, spec["options"])
    assert (result.width, result.height) == expected
    info = probe(result.path)
    assert (info.display_width, info.display_height) == expected
    assert info.rotation == 0


@pytest.mark.django_db
@pytest.mark.once
def test_rotated_phone_upload_is_ready_at_720x1280(
    media: dict[str, Path], settings, django_capture_on_commit_callbacks
) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "BACKEND": "local"}
    upload: SimpleUploadedFile = clip_upload(media["rotated"])
    with django_capture_on_commit_callbacks(execute=True):
        submission = Submission.objects.create(file=upload)
    for _ in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            run_jobs()
        if not enqueued_names():
            break
    submission.refresh_from_db()
    assert submission.status == "ready"
    for name in ("video", "poster"):
        output = submission.tasks.get(name=name).output
        assert (output["width"], output["height"]) == (720, 1280), name
