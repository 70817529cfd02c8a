"""Recognising text playlists and manifests before ffmpeg sees them.

The demuxer allow-list is the guard; this names what was refused, and also catches variants
ffmpeg's own probes skip today (a blank line before ``#EXTM3U``) in case a future build reads them.
"""

from __future__ import annotations

import os
import re

_HEAD_BYTES = 8192
# XML declaration, processing instructions, comments and doctypes ahead of the root element.
_XML_PROLOGUE = re.compile(r"^\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL | re.I)
_MARKERS = (
    ("#EXTM3U", "hls"),
    ("<MPD", "dash"),
    ("ffconcat", "concat"),
    ("<CompositionPlaylist", "imf"),
    ("<AssetMap", "imf"),
    ("<SmoothStreamingMedia", "smooth streaming"),
    ("v=0", "sdp"),
)


def manifest_kind(path: str | os.PathLike[str]) -> str | None:
    """``"dash"``, ``"hls"``… when the file starts like a playlist or manifest, else ``None``."""
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    text = head.decode("utf-8", errors="replace").replace("\x00", "")
    text = text.lstrip("\ufeff\ufffe\ufffd \t\r\n")
    while match := _XML_PROLOGUE.match(text):
        text = text[match.end() :]
    text = text.lstrip()
    for marker, kind in _MARKERS:
        if text[: len(marker)].lower() == marker.lower():
            return kind
    return None
