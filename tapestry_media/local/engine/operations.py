"""``run_operation``: one task kind on one local file, written atomically to an output directory."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .binary import available_encoders, find_ffmpeg
from .commands import DEFAULT_PRESET, Command, plan_command
from .diagnostics import describe
from .errors import EngineError, EngineTimeout, InputError, InputRefused, UnsupportedOperation
from .formats import FORMATS
from .options import Spec, parse_spec
from .paths import without_paths
from .probe import MediaInfo, is_refusal, probe
from .progress import ProgressReporter
from .runner import Completed, run_ffmpeg

# Probing an input is quick; without an operation timeout it still must not hang forever.
_PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class EngineResult:
    """The file an operation produced. ``duration`` is ``None`` for images, sizes for audio."""

    path: str
    kind: str
    format: str
    mime_type: str
    width: int | None
    height: int | None
    duration: float | None
    filesize: int


def run_operation(
    kind: str,
    input_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    options: Mapping[str, object] | None = None,
    *,
    basename: str | None = None,
    ffmpeg: str | None = None,
    progress: Callable[[float], None] | None = None,
    timeout: float | None = None,
    preset: str = DEFAULT_PRESET,
    input_name: str | None = None,
) -> EngineResult:
    """Run a ``video``, ``image`` or ``audio`` operation on a local file.

    The output is written to ``output_dir`` (created if missing) as ``basename`` plus the suffix of
    the output format (``.mp4``, ``.jpg``…); ``basename`` defaults to the input's file name without
    its suffix. An existing file of that name is replaced. The result's ``path`` is the real path.
    The file appears under its final name only once complete: ffmpeg writes a hidden temporary file
    in ``output_dir`` that is removed on any failure.

    ``progress`` is called from this thread with percentages (0.0 first, then increasing, 100.0
    last on success); raising from it stops ffmpeg and propagates the exception. ``timeout``
    (seconds) covers the whole operation; past it ffmpeg is killed and :class:`EngineTimeout`
    raised. ``preset`` is the x264/x265 speed preset. ``input_name`` is how error messages call
    the input (default: its base name); messages never carry a path, ``stderr`` does.

    Raises :class:`UnsupportedOperation` (kind, option or value), :class:`InputError` (missing,
    unreadable or unsuitable input), :class:`EngineUnavailable` (no ffmpeg), :class:`EngineTimeout`,
    or :class:`EngineError` when ffmpeg fails otherwise. ``ValueError`` for a ``basename`` that is
    not a plain file name.
    """
    spec = parse_spec(kind, options)
    name = _basename(basename, input_path)
    binary = find_ffmpeg(ffmpeg)
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = input_name or os.path.basename(os.fspath(input_path))
    media = probe(input_path, ffmpeg=binary, timeout=_left(deadline, _PROBE_TIMEOUT), name=shown)
    partial = _partial_path(output_dir, name, FORMATS[spec.kind][spec.format].suffix)
    command = plan_command(spec, media, binary, input_path, partial, preset=preset)
    _require_encoders(binary, command, spec)
    os.makedirs(output_dir, exist_ok=True)
    reporter = ProgressReporter(progress)
    reporter.report(0.0)
    try:
        completed = _run(command, reporter, deadline, timeout)
        _check_output(completed, partial, spec, media, {os.fspath(input_path): shown})
        final = os.path.join(os.path.abspath(output_dir), name + command.output_format.suffix)
        result = _describe_output(binary, partial, final, command, deadline)
        os.replace(partial, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    reporter.finish()
    return result


def _run(
    command: Command, reporter: ProgressReporter, deadline: float | None, timeout: float | None
) -> Completed:
    try:
        return run_ffmpeg(
            command.argv,
            duration=command.duration,
            progress=reporter.report,
            timeout=_left(deadline, None),
        )
    except EngineTimeout as exc:
        # Report the caller's limit, not what was left of it once probing was done.
        raise EngineTimeout(
            f"{command.output_format.kind} operation did not finish within {timeout:g} s; "
            "ffmpeg was stopped",
            stderr=exc.stderr,
        ) from exc


def _left(deadline: float | None, default: float | None) -> float | None:
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())


def _partial_path(output_dir: str | os.PathLike[str], name: str, suffix: str) -> str:
    # Not mkstemp: ffmpeg creates the file, so it gets the usual umask permissions, not 0600.
    # The real suffix keeps the partial file recognisable when it is probed.
    token = secrets.token_hex(6)
    return os.path.join(os.path.abspath(output_dir), f".{name[:64]}.{token}.partial{suffix}")


def _basename(basename: str | None, input_path: str | os.PathLike[str]) -> str:
    if basename is None:
        return os.path.splitext(os.path.basename(os.fspath(input_path)))[0] or "output"
    separators = {os.sep, os.altsep or os.sep, "\0"}
    if not basename or basename in (".", "..") or any(sep in basename for sep in separators):
        raise ValueError(f"basename must be a plain file name, not {basename!r}")
    return basename


def _require_encoders(ffmpeg: str, command: Command, spec: Spec) -> None:
    missing = [name for name in command.encoders if name not in available_encoders(ffmpeg)]
    if missing:
        option = "codec" if "codec" in spec.given else "format"
        raise UnsupportedOperation(
            f"this ffmpeg ({ffmpeg}) has no {', '.join(missing)} encoder, needed for "
            f"{spec.kind} {option} {getattr(spec, option)!r}",
            option=option,
        )


def _check_output(
    completed: Completed, partial: str, spec: Spec, media: MediaInfo, names: dict[str, str]
) -> None:
    if completed.returncode != 0:
        reason = without_paths(describe(completed.stderr), names)
        if is_refusal(list(completed.stderr)):
            error: type[EngineError] = InputRefused
        elif _blames_input(completed.stderr):
            error = InputError
        else:
            error = EngineError
        raise error(
            f"ffmpeg failed ({spec.kind}, exit status {completed.returncode}): {reason}",
            stderr=completed.stderr,
        )
    if not os.path.exists(partial) or os.path.getsize(partial) == 0:
        at = f" at {spec.start:g} s" if spec.start else ""
        length = f" (input duration {media.duration:g} s)" if media.duration else ""
        raise InputError(
            f"ffmpeg produced no {spec.kind} output: no frame or sample{at} in the input{length}",
            stderr=completed.stderr,
        )


_INPUT_FAULTS = (
    "Error opening input",
    "Invalid data found",
    "Error while decoding",
    "corrupt",
    "moov atom not found",
)


def _blames_input(stderr: tuple[str, ...]) -> bool:
    return any(fault in line for line in stderr for fault in _INPUT_FAULTS)


def _describe_output(
    ffmpeg: str, partial: str, final: str, command: Command, deadline: float | None
) -> EngineResult:
    info = probe(partial, ffmpeg=ffmpeg, timeout=_left(deadline, _PROBE_TIMEOUT))
    output_format = command.output_format
    is_audio = output_format.kind == "audio"
    return EngineResult(
        path=final,
        kind=output_format.kind,
        format=output_format.name,
        mime_type=output_format.mime_type,
        width=None if is_audio else info.display_width,
        height=None if is_audio else info.display_height,
        duration=None if output_format.kind == "image" else info.duration,
        filesize=os.path.getsize(partial),
    )
