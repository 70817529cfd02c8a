"""Test media for the engine tests, generated once per session with the real ffmpeg (lavfi)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tapestry_media.local.engine import find_ffmpeg

from .clips import Clips


# The engine needs no Django. The project's tests/conftest.py has autouse fixtures that need
# pytest-django (``settings``) or the app; these same-named no-ops replace them for this package,
# so ``pytest tests/engine -p no:django`` runs.
@pytest.fixture(autouse=True)
def _clean_backends() -> None:
    return None


@pytest.fixture(autouse=True)
def _clean_jobs() -> None:
    return None


@pytest.fixture(autouse=True)
def _media_root() -> None:
    return None


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg()


def _make(ffmpeg: str, *args: str) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def _clip(ffmpeg: str, path: Path, size: str, rate: int, seconds: float, audio: bool) -> Path:
    sources = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        sources += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        encode += ["-c:a", "aac", "-shortest"]
    _make(ffmpeg, *sources, "-t", str(seconds), *encode, str(path))
    return path


@pytest.fixture(scope="session")
def clips(ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> Clips:
    root = tmp_path_factory.mktemp("media")
    landscape_720 = _clip(ffmpeg, root / "landscape720.mp4", "1280x720", 10, 1, audio=True)
    rotated = root / "rotated.mp4"
    _make(ffmpeg, "-display_rotation", "90", "-i", str(landscape_720), "-c", "copy", str(rotated))
    still = root / "still.png"
    _make(ffmpeg, "-f", "lavfi", "-i", "testsrc2=size=400x300", "-frames:v", "1", str(still))
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(random.Random(0).randbytes(20_000))
    return Clips(
        landscape=_clip(ffmpeg, root / "landscape.mp4", "1920x1080", 5, 2, audio=True),
        portrait=_clip(ffmpeg, root / "portrait.mp4", "1080x1920", 5, 1, audio=True),
        rotated=rotated,
        rotated_source=landscape_720,
        silent=_clip(ffmpeg, root / "silent.mp4", "320x180", 15, 1, audio=False),
        small=_clip(ffmpeg, root / "small.mp4", "320x180", 15, 1, audio=True),
        still=still,
        corrupt=corrupt,
    )
