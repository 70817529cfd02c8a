"""Running ffmpeg: progress on stdout, a stderr tail, a deadline, and no deadlocks.

Two reader threads drain stdout (``-progress pipe:1``) and stderr so that neither pipe fills up;
the progress callback itself runs in the calling thread (it may touch thread-bound resources such
as a database connection). An exception raised by the callback stops ffmpeg and propagates, which
makes the callback a way to cancel.
"""

from __future__ import annotations

import logging
import os
import queue
import shlex
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Final

from .diagnostics import describe
from .errors import EngineTimeout, EngineUnavailable
from .progress import ProgressParser

logger = logging.getLogger("tapestry_media.engine")

STDERR_TAIL_LINES: Final = 20
_EOF: Final = None


@dataclass(frozen=True)
class Completed:
    """How ffmpeg exited and the last lines it wrote to stderr."""

    returncode: int
    stderr: tuple[str, ...]


def run_ffmpeg(
    argv: Sequence[str],
    *,
    duration: float | None = None,
    progress: Callable[[float], None] | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run ``argv`` (which must write ``-progress pipe:1``) to completion or until ``timeout``.

    ``progress`` receives percentages computed against ``duration`` (seconds of output). On timeout
    ffmpeg is killed and :class:`EngineTimeout` raised. A non-zero exit is returned, not raised.
    """
    logger.debug("running ffmpeg: %s", shlex.join(argv))
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
        )
    except OSError as exc:
        raise EngineUnavailable(f"cannot start ffmpeg at {argv[0]!r}: {exc}") from exc
    assert process.stdout is not None
    assert process.stderr is not None
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    events: queue.Queue[float | None] = queue.Queue()
    readers = [
        threading.Thread(target=_read_progress, args=(process.stdout, duration, events)),
        threading.Thread(target=_read_stderr, args=(process.stderr, tail)),
    ]
    for reader in readers:
        reader.daemon = True
        reader.start()
    returncode: int | None = None
    try:
        _pump(events, progress, deadline)
        returncode = process.wait(timeout=_remaining(deadline))
    except (queue.Empty, subprocess.TimeoutExpired):
        pass  # returncode stays None: timed out
    finally:
        _stop(process, readers)
    if returncode is None:
        said = f"; it last said: {describe(tail)}" if tail else ""
        raise EngineTimeout(
            f"ffmpeg did not finish within {timeout:g} s and was stopped{said}", stderr=tail
        )
    logger.debug("ffmpeg exited with %s after %.2f s", returncode, time.monotonic() - started)
    return Completed(returncode, tuple(tail))


def _environment() -> dict[str, str]:
    # SVT-AV1 prints its banner straight to stderr; keep it to errors so the tail stays useful.
    return {**os.environ, "SVT_LOG": os.environ.get("SVT_LOG", "2")}


def _pump(
    events: queue.Queue[float | None],
    progress: Callable[[float], None] | None,
    deadline: float | None,
) -> None:
    """Deliver progress events until stdout closes; ``queue.Empty`` means the deadline passed."""
    while True:
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            raise queue.Empty
        percent = events.get(timeout=remaining)
        if percent is _EOF:
            return
        if progress is not None:
            progress(percent)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _read_progress(
    stream: IO[bytes], duration: float | None, events: queue.Queue[float | None]
) -> None:
    parser = ProgressParser(duration)
    try:
        for raw in stream:
            percent = parser.feed(raw.decode("utf-8", errors="replace"))
            if percent is not None:
                events.put(percent)
    finally:
        events.put(_EOF)


def _read_stderr(stream: IO[bytes], tail: deque[str]) -> None:
    for raw in stream:
        tail.append(raw.decode("utf-8", errors="replace").rstrip())


def _stop(process: subprocess.Popen[bytes], readers: list[threading.Thread]) -> None:
    """Kill ffmpeg if it still runs, reap it, and let the reader threads see end-of-file."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for reader in readers:
        reader.join(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
