"""The engine tests' media files (made once per session by the ``clips`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Clips:
    landscape: Path  # 1920x1080, 2 s at 5 fps, with audio
    portrait: Path  # 1080x1920, 1 s, with audio
    rotated: Path  # 1280x720 stored, tagged display rotation 90 (a phone clip)
    rotated_source: Path  # the same clip without the tag
    silent: Path  # 320x180, 1 s, no audio stream
    small: Path  # 320x180, 1 s, with audio
    still: Path  # 400x300 png
    corrupt: Path  # random bytes named .mp4
