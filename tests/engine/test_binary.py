"""Finding the ffmpeg binary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapestry_media.local.engine import EngineUnavailable, find_ffmpeg
from tapestry_media.local.engine.binary import available_encoders


def test_default_is_an_executable_ffmpeg() -> None:
    path = find_ffmpeg()
    assert os.path.isfile(path)
    assert os.access(path, os.X_OK)


def test_configured_path_is_used(ffmpeg: str) -> None:
    assert find_ffmpeg(ffmpeg) == ffmpeg


@pytest.mark.parametrize("configured", ["/nonexistent/bin/ffmpeg", "no-such-ffmpeg-binary"])
def test_bad_configured_path_raises_naming_it(configured: str) -> None:
    with pytest.raises(EngineUnavailable) as caught:
        find_ffmpeg(configured)
    assert repr(configured) in caught.value.reason


def test_configured_file_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("not a program")
    with pytest.raises(EngineUnavailable, match="not an executable file"):
        find_ffmpeg(str(fake))


def test_encoders_of_this_build_are_listed(ffmpeg: str) -> None:
    encoders = available_encoders(ffmpeg)
    assert {"libx264", "aac", "libvpx-vp9", "libopus", "libmp3lame", "mjpeg", "png"} <= encoders
    assert "=" not in encoders  # the legend line " V..... = Video" is not an encoder
