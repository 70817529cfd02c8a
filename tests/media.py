"""Small real media files for Django-level tests, made with the real ffmpeg in milliseconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from tapestry_media.local.engine import find_ffmpeg


def make_clip(
    path: Path, *, size: str = "320x240", seconds: float = 2, rate: int = 15, audio: bool = True
) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440"]
        encode += ["-c:a", "aac", "-shortest"]
    subprocess.run(
        [find_ffmpeg(), "-v", "error", "-nostdin", "-y", *args, "-t", str(seconds), *encode,
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def clip_upload(path: Path, name: str = "clip.mp4") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, path.read_bytes(), content_type="video/mp4")
