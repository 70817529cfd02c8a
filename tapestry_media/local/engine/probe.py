"""Reading a media file's streams by parsing ``ffmpeg -i`` output.

imageio-ffmpeg ships no ffprobe, so the engine runs ``ffmpeg -hide_banner -i FILE`` (which exits
with status 1, "no output file") and parses the stream summary it prints on stderr.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, replace

from .binary import find_ffmpeg
from .diagnostics import describe
from .errors import EngineTimeout, InputError, InputRefused
from .formats import REFERENCING_FORMATS
from .paths import input_args, without_paths
from .sniff import manifest_kind

logger = logging.getLogger("tapestry_media.engine")

_INPUT = re.compile(r"^Input #0, (?P<format>.+?), from ")
_DURATION = re.compile(r"^\s*Duration: (?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (?P<type>\w+): (?P<rest>.*)$")
# Hex tags such as "0x31637661" start with 0, so requiring a non-zero first digit skips them.
_DIMENSIONS = re.compile(r"(?<![\w.])(?P<w>[1-9]\d*)x(?P<h>[1-9]\d*)(?![\w.])")
_PIXEL_FORMAT = re.compile(r"^[^,]*, (?P<pix>[a-z0-9_]+)")
_FRAME_RATE = re.compile(r"(?P<rate>\d+(?:\.\d+)?)(?P<k>k?) (?:fps|tbr)\b")
_SAR = re.compile(r"SAR (?P<num>\d+):(?P<den>\d+)")
# ffmpeg >= 5 prints the display matrix as a counter-clockwise angle ("Display Matrix: rotation
# of 90.00 degrees"; "displaymatrix: ..." before 7). Older builds print a clockwise "rotate" tag.
_DISPLAY_MATRIX = re.compile(r"rotation of (?P<deg>-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_ROTATE_TAG = re.compile(r"^\s*rotate\s*:\s*(?P<deg>-?\d+(?:\.\d+)?)\s*$")

_STILL_IMAGE_FORMATS = frozenset({"image2", "webp", "avif"})


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg reports about a file.

    ``width``/``height`` are the stored frame size; ``rotation`` is the counter-clockwise display
    rotation in degrees (0, 90, 180 or 270; the same convention as ffmpeg's ``-display_rotation``),
    and ``display_width``/``display_height`` the size once that rotation is applied.
    """

    duration: float | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    display_width: int | None = None
    display_height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    has_video: bool = False
    has_audio: bool = False
    format_name: str | None = None
    pixel_format: str | None = None
    frame_rate: float | None = None
    sample_aspect_ratio: float = 1.0

    @property
    def is_still_image(self) -> bool:
        """True for a single picture (png, jpeg, webp…) rather than a video."""
        name = self.format_name or ""
        return self.has_video and (name.endswith("_pipe") or name in _STILL_IMAGE_FORMATS)


@dataclass
class _Stream:
    kind: str
    codec: str
    details: str
    rotation: int = 0


def probe(
    path: str | os.PathLike[str],
    *,
    ffmpeg: str | None = None,
    timeout: float | None = 60.0,
    name: str | None = None,
) -> MediaInfo:
    """Probe a local file; :class:`InputError` when it is missing or ffmpeg cannot read it,
    :class:`InputRefused` when it is a playlist/manifest or no allowed demuxer takes it.

    ``name`` is how messages call the file (default: its base name); they never hold its path.
    """
    filename = os.fspath(path)
    name = name or os.path.basename(filename)
    if not os.path.isfile(filename):
        raise InputError(f"input file not found: {name}", stderr=[f"not a file: {filename}"])
    if kind := manifest_kind(filename):
        raise InputRefused(
            f"{name} is a {kind} playlist or manifest, which the engine does not read"
        )
    argv = [find_ffmpeg(ffmpeg), "-hide_banner", "-nostdin", *input_args(filename)]
    logger.debug("probing: %s", shlex.join(argv))
    try:
        completed = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EngineTimeout(f"probing {name} took longer than {timeout} s") from exc
    lines = completed.stderr.decode("utf-8", errors="replace").splitlines()
    if is_refusal(lines):
        raise InputRefused(
            f"{name} is not a media file the engine reads (a playlist, a manifest or an "
            "unsupported format)",
            stderr=lines[-20:],
        )
    info = parse_probe_output(lines)
    if info is None:
        reason = without_paths(describe(lines), {filename: name})
        raise InputError(f"ffmpeg cannot read {name}: {reason}", stderr=lines[-20:])
    if set((info.format_name or "").split(",")) & REFERENCING_FORMATS:
        raise InputRefused(
            f"{name} is a {info.format_name} playlist or manifest, which the engine does not read",
            stderr=lines[-20:],
        )
    return info


def is_refusal(lines: list[str]) -> bool:
    """ffmpeg refused a demuxer or protocol outside the allow-lists."""
    return any("not on whitelist" in line for line in lines)


def parse_probe_output(lines: list[str]) -> MediaInfo | None:
    """Parse ``ffmpeg -i`` stderr; ``None`` when no input was opened or it has no audio/video."""
    format_name: str | None = None
    duration: float | None = None
    streams: list[_Stream] = []
    for line in lines:
        if match := _INPUT.match(line):
            format_name = match.group("format")
        elif match := _DURATION.match(line):
            duration = _seconds(match.group("h"), match.group("m"), match.group("s"))
        elif match := _STREAM.match(line):
            streams.append(_new_stream(match.group("type"), match.group("rest")))
        elif streams:
            _read_stream_detail(streams[-1], line)
    video = next((s for s in streams if s.kind == "video"), None)
    audio = next((s for s in streams if s.kind == "audio"), None)
    if format_name is None or (video is None and audio is None):
        return None
    info = MediaInfo(duration=duration, format_name=format_name)
    if audio is not None:
        info = _with_audio(info, audio)
    if video is not None:
        info = _with_video(info, video)
    return info


def _seconds(hours: str, minutes: str, seconds: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _new_stream(stream_type: str, rest: str) -> _Stream:
    kind = stream_type.lower()
    if kind == "video" and "(attached pic)" in rest:
        kind = "cover_art"
    codec = rest.split(None, 1)[0].rstrip(",") if rest.strip() else "unknown"
    return _Stream(kind=kind, codec=codec, details=rest)


def _read_stream_detail(stream: _Stream, line: str) -> None:
    if match := _DISPLAY_MATRIX.search(line):
        stream.rotation = _right_angle(float(match.group("deg")))
    elif (match := _ROTATE_TAG.match(line)) and not stream.rotation:
        stream.rotation = _right_angle(-float(match.group("deg")))


def _right_angle(degrees: float) -> int:
    return (round(degrees / 90) * 90) % 360


def _with_audio(info: MediaInfo, audio: _Stream) -> MediaInfo:
    return replace(info, has_audio=True, audio_codec=audio.codec)


def _with_video(info: MediaInfo, video: _Stream) -> MediaInfo:
    width = height = None
    if match := _DIMENSIONS.search(video.details):
        width, height = int(match.group("w")), int(match.group("h"))
    display_width, display_height = width, height
    if video.rotation in (90, 270):
        display_width, display_height = height, width
    pix = _PIXEL_FORMAT.match(video.details)
    return replace(
        info,
        has_video=True,
        video_codec=video.codec,
        width=width,
        height=height,
        rotation=video.rotation,
        display_width=display_width,
        display_height=display_height,
        pixel_format=pix.group("pix") if pix else None,
        frame_rate=_frame_rate(video.details),
        sample_aspect_ratio=_sample_aspect_ratio(video.details),
    )


def _frame_rate(details: str) -> float | None:
    match = _FRAME_RATE.search(details)
    if match is None:
        return None
    rate = float(match.group("rate")) * (1000 if match.group("k") else 1)
    return rate or None


def _sample_aspect_ratio(details: str) -> float:
    match = _SAR.search(details)
    if match is None or int(match.group("num")) == 0 or int(match.group("den")) == 0:
        return 1.0
    return int(match.group("num")) / int(match.group("den"))
