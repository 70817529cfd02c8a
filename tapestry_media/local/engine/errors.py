"""Exceptions raised by the local engine.

Every error carries a human-readable ``reason`` that is safe to show to an operator and to store
on a task row. Callers can catch :class:`EngineError` for "the local engine could not do it".
"""

from __future__ import annotations

from collections.abc import Sequence


class EngineError(Exception):
    """Base class: the local engine could not run the operation.

    ``reason`` is the message, naming files by their base name only; ``stderr`` holds the last
    lines ffmpeg wrote, when ffmpeg ran (with full paths: for operators, not for users).
    """

    def __init__(self, reason: str, *, stderr: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stderr: tuple[str, ...] = tuple(stderr)

    @property
    def detail(self) -> str:
        """ffmpeg's own words in full (or the reason when ffmpeg did not run)."""
        return "\n".join(self.stderr) if self.stderr else self.reason


class EngineUnavailable(EngineError):
    """No usable ffmpeg binary was found (or the configured one does not exist)."""


class UnsupportedOperation(EngineError):
    """The kind, an option, or an option's value is not supported by the local engine.

    ``option`` names the offending option when there is one (``None`` for an unknown kind).
    """

    def __init__(self, reason: str, *, option: str | None = None) -> None:
        super().__init__(reason)
        self.option = option


class InputError(EngineError):
    """The input cannot be used: missing, unreadable/corrupt, or lacking the needed stream."""


class InputRefused(InputError):
    """The input is of a kind the engine never reads: a playlist or manifest that names other
    files or URLs (DASH, HLS, concat, SDP…), or anything outside the allowed demuxers."""


class EngineTimeout(EngineError):
    """The operation did not finish in time; ffmpeg was killed and partial output removed."""
