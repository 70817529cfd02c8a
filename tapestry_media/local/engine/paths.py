"""File paths as ffmpeg arguments, and keeping them out of messages."""

from __future__ import annotations

import os
import re

from .formats import INPUT_DEMUXERS

# "file:/abs/dir/name.mp4" or "/abs/dir/name.mp4" (after a space, quote or line start).
_PATH = re.compile(r"(?:file:)?(?<![\w.])/[^\s'\"]*")


def ffmpeg_url(path: str | os.PathLike[str]) -> str:
    """An absolute ``file:`` URL for ``path``.

    ffmpeg reads a leading ``-`` as an option and ``name:`` as a protocol; an absolute path behind
    the ``file:`` protocol is always taken literally.
    """
    return "file:" + os.path.abspath(os.fspath(path))


def input_args(path: str | os.PathLike[str]) -> list[str]:
    """``-i`` for a local input, read only with the allowed demuxers and the file protocol, so a
    manifest cannot make ffmpeg open another file or a URL."""
    return [
        "-format_whitelist",
        ",".join(INPUT_DEMUXERS),
        "-protocol_whitelist",
        "file",
        "-i",
        ffmpeg_url(path),
    ]


def without_paths(text: str, names: dict[str, str] | None = None) -> str:
    """``text`` with the given paths replaced by their names, and any other absolute path (or
    ``file:`` URL) by its base name."""
    for path, name in sorted((names or {}).items(), key=lambda item: -len(item[0])):
        text = text.replace(ffmpeg_url(path), name).replace(os.path.abspath(path), name)
    return _PATH.sub(lambda match: os.path.basename(match.group(0).rstrip("/.:")), text)
