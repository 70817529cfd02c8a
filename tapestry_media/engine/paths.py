"""File paths as ffmpeg arguments."""

from __future__ import annotations

import os


def ffmpeg_url(path: str | os.PathLike[str]) -> str:
    """An absolute ``file:`` URL for ``path``.

    ffmpeg reads a leading ``-`` as an option and ``name:`` as a protocol; an absolute path behind
    the ``file:`` protocol is always taken literally.
    """
    return "file:" + os.path.abspath(os.fspath(path))
