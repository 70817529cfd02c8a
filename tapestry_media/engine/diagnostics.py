"""Turning ffmpeg's stderr into a short, readable reason."""

from __future__ import annotations

import re
from collections.abc import Iterable

# "[in#0 @ 0x55b8fde86cc0] Error opening input: ..." -> "Error opening input: ..."
_CONTEXT_PREFIX = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")

# Lines ffmpeg prints that never explain a failure.
_NOISE = (
    "At least one output file must be specified",
    "Svt[info]",
    "Press [q] to stop",
)


def meaningful_lines(lines: Iterable[str], limit: int = 3) -> list[str]:
    """The last ``limit`` distinct non-noise lines, without ``[ctx @ 0x…]`` prefixes."""
    kept: list[str] = []
    for raw in lines:
        line = _CONTEXT_PREFIX.sub("", raw.strip())
        if not line or any(noise in line for noise in _NOISE):
            continue
        if line in kept:
            kept.remove(line)
        kept.append(line)
    return kept[-limit:]


def describe(lines: Iterable[str], limit: int = 3) -> str:
    """``meaningful_lines`` joined for an error message, or a fallback when ffmpeg said nothing."""
    picked = meaningful_lines(lines, limit)
    return " | ".join(picked) if picked else "ffmpeg gave no error message"
