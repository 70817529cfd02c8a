"""Finding the ffmpeg executable and asking it which encoders it has."""

from __future__ import annotations

import functools
import importlib
import os
import re
import shutil
import subprocess

from .errors import EngineUnavailable

# " V....D libx264   libx264 H.264 ..." : a type letter, five flag characters, then the name.
_ENCODER_LINE = re.compile(r"^\s*[VAS][A-Z.]{5}\s+(\w[\w-]*)")


def find_ffmpeg(configured: str | None = None) -> str:
    """Return the path of the ffmpeg executable to use.

    Order: the ``configured`` path (a path, or a bare name looked up on PATH) when given — and then
    only that; else the binary bundled with ``imageio-ffmpeg``; else ``ffmpeg`` on PATH.
    Raises :class:`EngineUnavailable` with a message saying what to do when none is usable.
    """
    if configured:
        return _configured_ffmpeg(configured)
    bundled = _imageio_ffmpeg()
    if bundled:
        return bundled
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    raise EngineUnavailable(
        "no ffmpeg found: install imageio-ffmpeg (pip install imageio-ffmpeg), "
        "put ffmpeg on PATH, or configure the path of an ffmpeg executable"
    )


def _configured_ffmpeg(configured: str) -> str:
    expanded = os.path.expanduser(configured)
    if os.sep in expanded or (os.altsep and os.altsep in expanded):
        if os.path.isfile(expanded) and os.access(expanded, os.X_OK):
            return expanded
    else:
        found = shutil.which(expanded)
        if found:
            return found
    raise EngineUnavailable(
        f"the configured ffmpeg {configured!r} is not an executable file; "
        "fix the configured path or leave it unset to use imageio-ffmpeg or ffmpeg on PATH"
    )


def _imageio_ffmpeg() -> str | None:
    try:
        module = importlib.import_module("imageio_ffmpeg")
        exe = module.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return str(exe) if exe else None


@functools.lru_cache(maxsize=8)
def available_encoders(ffmpeg: str) -> frozenset[str]:
    """Names of the encoders the given ffmpeg build has (``libx264``, ``libopus``…), cached."""
    try:
        completed = subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-encoders"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"cannot run ffmpeg at {ffmpeg!r}: {exc}") from exc
    text = completed.stdout.decode("utf-8", errors="replace")
    return frozenset(
        match.group(1) for line in text.splitlines() if (match := _ENCODER_LINE.match(line))
    )
