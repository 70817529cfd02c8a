"""Turning ffmpeg's ``-progress`` output into percentages."""

from __future__ import annotations

import re
from collections.abc import Callable

# Intermediate values stop short of 100: ffmpeg may still be finishing (e.g. moving the moov atom).
_RUNNING_CAP = 99.0
_CLOCK = re.compile(r"^(?P<sign>-?)(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")


class ProgressParser:
    """Feed it ffmpeg ``-progress`` lines; it returns a percentage at the end of each report.

    ffmpeg writes blocks of ``key=value`` lines, each closed by ``progress=continue`` or
    ``progress=end``. The position is ``out_time_us`` (``out_time_ms`` is, despite its name, also
    in microseconds; older builds only have that one) or ``out_time`` as ``HH:MM:SS.micro``.
    Without a known ``duration`` only the final 100 is reported.
    """

    def __init__(self, duration: float | None) -> None:
        self._duration = duration if duration and duration > 0 else None
        self._seconds: float | None = None

    def feed(self, line: str) -> float | None:
        key, _, value = line.strip().partition("=")
        value = value.strip()
        if key in ("out_time_us", "out_time_ms"):
            self._seconds = _microseconds(value, self._seconds)
        elif key == "out_time":
            self._seconds = _clock(value, self._seconds)
        elif key == "progress":
            return self._percent(finished=value == "end")
        return None

    def _percent(self, *, finished: bool) -> float | None:
        if finished:
            return 100.0
        if self._duration is None or self._seconds is None:
            return None
        return min(_RUNNING_CAP, max(0.0, 100.0 * self._seconds / self._duration))


def _microseconds(value: str, previous: float | None) -> float | None:
    try:
        return int(value) / 1_000_000
    except ValueError:  # "N/A" before the first frame is written
        return previous


def _clock(value: str, previous: float | None) -> float | None:
    match = _CLOCK.match(value)
    if match is None:
        return previous
    seconds = int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))
    return -seconds if match.group("sign") else seconds


class ProgressReporter:
    """Forwards percentages to a callback, only when they increase, and 100 once at the finish."""

    def __init__(self, callback: Callable[[float], None] | None) -> None:
        self._callback = callback
        self._last = -1.0

    def report(self, percent: float) -> None:
        if self._callback is not None and percent > self._last:
            self._last = percent
            self._callback(percent)

    def finish(self) -> None:
        self.report(100.0)
