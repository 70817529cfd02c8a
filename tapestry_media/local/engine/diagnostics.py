"""Turning ffmpeg's stderr into a short, readable reason."""

from __future__ import annotations

import re
from collections.abc import Iterable

# "[in#0 @ 0x55b8fde86cc0] Error opening input: ..." -> "Error opening input: ..."
_CONTEXT_PREFIX = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")

# Lines ffmpeg prints that never explain a failure; they follow the line that does.
_NOISE = (
    "At least one output file must be specified",
    "Svt[info]",
    "Task finished with error code",
    "Terminating thread with return code",
    "Error sending frames to consumers",
    "Could not open encoder before EOF",
    "Nothing was written into output file",
)


def meaningful_lines(lines: Iterable[str], limit: int = 3) -> list[str]:
    """The last ``limit`` distinct non-noise lines, without ``[ctx @ 0x…]`` prefixes.

    When every line is noise, the last lines are returned anyway.
    """
    stripped = [_strip_context(raw) for raw in lines]
    stripped = [line for line in stripped if line]
    kept = [line for line in stripped if not any(noise in line for noise in _NOISE)]
    return _last_distinct(kept or stripped, limit)


def _strip_context(line: str) -> str:
    # Nested contexts: "[vost#0:0/libx265 @ 0x1] [enc:libx265 @ 0x2] Error ..."
    previous = None
    while previous != line:
        previous, line = line, _CONTEXT_PREFIX.sub("", line.strip())
    return line


def _last_distinct(lines: list[str], limit: int) -> list[str]:
    picked: list[str] = []
    for line in reversed(lines):
        if line not in picked:
            picked.append(line)
        if len(picked) == limit:
            break
    return picked[::-1]


def describe(lines: Iterable[str], limit: int = 3) -> str:
    """``meaningful_lines`` joined for an error message, or a fallback when ffmpeg said nothing."""
    picked = meaningful_lines(lines, limit)
    return " | ".join(picked) if picked else "ffmpeg gave no error message"
