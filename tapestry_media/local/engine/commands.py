"""Building the ffmpeg command line for one operation (one builder per kind)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .binary import find_ffmpeg
from .errors import InputError, UnsupportedOperation
from .formats import (
    AUDIO_ENCODERS,
    FORMATS,
    IMAGE_ENCODERS,
    VIDEO_AUDIO_ENCODERS,
    VIDEO_CODECS,
    OutputFormat,
)
from .geometry import Frame, plan_frame
from .options import Spec, parse_spec
from .paths import ffmpeg_url, input_args
from .probe import MediaInfo, probe
from .quality import (
    AUDIO_BITRATE,
    AUDIO_VBR,
    DEFAULT_QUALITY,
    JPEG_QSCALE,
    VIDEO_CRF,
    WEBP_QUALITY,
    vorbis_quality,
)

X264_PRESETS: Final = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
# About 1.4x realtime for 1080p -> 720p on 2 cores; x264's own default "medium" is ~0.6x.
DEFAULT_PRESET: Final = "veryfast"
VP9_CPU_USED: Final = 5
SVTAV1_PRESET: Final = 8
# Seconds between ffmpeg's -progress reports (ffmpeg's own default is 0.5).
PROGRESS_INTERVAL: float = 0.5
# When a frame is wanted at or past the end, step back this far if the frame rate is unknown.
_LAST_FRAME_MARGIN: Final = 0.1


@dataclass(frozen=True)
class Command:
    """An ffmpeg invocation and what the engine needs to know to run and report it."""

    argv: tuple[str, ...]
    output_format: OutputFormat
    duration: float | None
    encoders: tuple[str, ...]
    frame: Frame | None = None


def build_command(
    kind: str,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    options: Mapping[str, object] | None,
    *,
    ffmpeg: str | None = None,
    preset: str = DEFAULT_PRESET,
    media: MediaInfo | None = None,
) -> list[str]:
    """The exact ffmpeg argv ``run_operation`` would run (probing the input unless ``media`` given).

    ``output_path`` is used as is (no suffix is added). Useful to reproduce or benchmark a run.
    """
    binary = find_ffmpeg(ffmpeg)
    spec = parse_spec(kind, options)
    info = media if media is not None else probe(input_path, ffmpeg=binary)
    return list(plan_command(spec, info, binary, input_path, output_path, preset=preset).argv)


def plan_command(
    spec: Spec,
    media: MediaInfo,
    ffmpeg: str,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    preset: str = DEFAULT_PRESET,
) -> Command:
    """Build the command for ``spec`` on an input described by ``media``.

    Raises :class:`InputError` when the input lacks what the kind needs, and
    :class:`UnsupportedOperation` for an unknown ``preset``.
    """
    if preset not in X264_PRESETS:
        raise UnsupportedOperation(
            f"preset {preset!r} is not an x264 preset; use one of {', '.join(X264_PRESETS)}"
        )
    builder = {"video": _video_command, "image": _image_command, "audio": _audio_command}
    return builder[spec.kind](spec, media, ffmpeg, os.fspath(input_path), output_path, preset)


def _head(ffmpeg: str) -> list[str]:
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-nostats",
        "-stats_period",
        f"{PROGRESS_INTERVAL:g}",
    ]


def _tail(output_format: OutputFormat, output_path: str | os.PathLike[str]) -> list[str]:
    # Drop container/stream metadata: phone uploads carry GPS location and device details.
    metadata = ["-map_metadata", "-1", "-map_chapters", "-1"]
    return [*metadata, "-f", output_format.muxer, ffmpeg_url(output_path)]


def _seconds(value: float) -> str:
    return f"{value:.3f}"


# --- video ---------------------------------------------------------------------------------------


def _video_command(
    spec: Spec,
    media: MediaInfo,
    ffmpeg: str,
    source: str,
    output: str | os.PathLike[str],
    preset: str,
) -> Command:
    _require_moving_video(media)
    start, duration = _window(spec, media)
    output_format = FORMATS["video"][spec.format]
    assert spec.codec is not None
    encoder = VIDEO_CODECS[spec.codec].encoder
    frame = plan_frame(*_upright_size(media), spec, even=True)
    filters = frame.filters() + ([f"fps={spec.fps:g}"] if spec.fps else [])
    argv = _head(ffmpeg) + _input(source, start)
    if duration is not None and spec.end is not None:
        argv += ["-t", _seconds(duration)]
    argv += ["-map", "0:V:0"] + (["-map", "0:a:0"] if media.has_audio else [])
    argv += ["-vf", ",".join(filters)]
    argv += _video_encoder_args(encoder, spec, preset)
    encoders = [encoder]
    if media.has_audio:
        audio_encoder = VIDEO_AUDIO_ENCODERS[spec.format]
        encoders.append(audio_encoder)
        argv += ["-c:a", audio_encoder, "-b:a", str(_audio_bitrate(audio_encoder, spec.quality))]
    else:
        argv += ["-an"]
    if spec.format in ("mp4", "mov"):
        argv += ["-movflags", "+faststart"]
    argv += _tail(output_format, output)
    return Command(tuple(argv), output_format, duration, tuple(encoders), frame)


def _require_moving_video(media: MediaInfo) -> None:
    if not media.has_video:
        raise InputError("the input has no video stream, so it cannot make a video")
    if media.is_still_image:
        raise InputError(f"the input is a still image ({media.format_name}), not a video")


def _video_encoder_args(encoder: str, spec: Spec, preset: str) -> list[str]:
    crf = str(VIDEO_CRF[encoder][spec.quality or DEFAULT_QUALITY])
    if encoder == "libx264":
        args = ["-c:v", "libx264", "-preset", preset]
    elif encoder == "libx265":
        args = ["-c:v", "libx265", "-preset", preset, "-x265-params", "log-level=error"]
    elif encoder == "libvpx-vp9":
        args = ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", str(VP9_CPU_USED)]
        args += ["-row-mt", "1"]
    else:
        args = ["-c:v", encoder, "-preset", str(SVTAV1_PRESET)]
    args += _video_rate_args(encoder, crf, spec)
    args += ["-pix_fmt", "yuv420p"]
    if encoder == "libx265":
        args += ["-tag:v", "hvc1"]  # Apple players refuse the default hev1 tag
    return args


def _video_rate_args(encoder: str, crf: str, spec: Spec) -> list[str]:
    """Quality alone: constant quality. Bitrate alone: average bitrate. Both: quality, capped."""
    if spec.bitrate is None:
        return ["-crf", crf] + (["-b:v", "0"] if encoder == "libvpx-vp9" else [])
    bitrate = str(spec.bitrate)
    if spec.quality is None:
        return ["-b:v", bitrate]
    if encoder == "libvpx-vp9":
        return ["-crf", crf, "-b:v", bitrate]  # libvpx's constrained-quality mode
    return ["-crf", crf, "-maxrate", bitrate, "-bufsize", str(2 * spec.bitrate)]


def _upright_size(media: MediaInfo) -> tuple[float, float]:
    """The picture's size as shown: rotation applied and pixels made square."""
    if media.width is None or media.height is None:
        raise InputError("ffmpeg did not report the input's frame size")
    width, height = media.width * media.sample_aspect_ratio, float(media.height)
    return (height, width) if media.rotation in (90, 270) else (width, height)


# --- image ---------------------------------------------------------------------------------------


def _image_command(
    spec: Spec,
    media: MediaInfo,
    ffmpeg: str,
    source: str,
    output: str | os.PathLike[str],
    preset: str,
) -> Command:
    if not media.has_video:
        raise InputError("the input has no video stream or picture, so it cannot make an image")
    output_format = FORMATS["image"][spec.format]
    encoder = IMAGE_ENCODERS[spec.format]
    frame = plan_frame(*_upright_size(media), spec, even=False)
    start = 0.0 if media.is_still_image else _frame_time(spec.start or 0.0, media)
    argv = _head(ffmpeg) + _input(source, start)
    argv += ["-map", "0:V:0", "-frames:v", "1", "-vf", ",".join(frame.filters())]
    argv += _image_encoder_args(encoder, spec)
    if output_format.muxer == "image2":
        argv += ["-update", "1"]  # one file, name taken literally (no %d pattern)
    argv += _tail(output_format, output)
    return Command(tuple(argv), output_format, None, (encoder,), frame)


def _frame_time(start: float, media: MediaInfo) -> float:
    """``start`` clamped so that a frame still exists there."""
    if media.duration is None:
        return start
    margin = 1 / media.frame_rate if media.frame_rate else _LAST_FRAME_MARGIN
    return max(0.0, min(start, media.duration - margin))


def _image_encoder_args(encoder: str, spec: Spec) -> list[str]:
    quality = spec.quality or DEFAULT_QUALITY
    if encoder == "mjpeg":
        return ["-c:v", "mjpeg", "-q:v", str(JPEG_QSCALE[quality])]
    if encoder == "libwebp":
        return ["-c:v", "libwebp", "-quality", str(WEBP_QUALITY[quality])]
    return ["-c:v", encoder]


# --- audio ---------------------------------------------------------------------------------------


def _audio_command(
    spec: Spec,
    media: MediaInfo,
    ffmpeg: str,
    source: str,
    output: str | os.PathLike[str],
    preset: str,
) -> Command:
    if not media.has_audio:
        raise InputError("the input has no audio stream, so there is no audio to extract")
    start, duration = _window(spec, media)
    output_format = FORMATS["audio"][spec.format]
    encoder = AUDIO_ENCODERS[spec.format]
    argv = _head(ffmpeg) + _input(source, start)
    if duration is not None and spec.end is not None:
        argv += ["-t", _seconds(duration)]
    argv += ["-map", "0:a:0", "-c:a", encoder, *_audio_rate_args(encoder, spec)]
    argv += _tail(output_format, output)
    return Command(tuple(argv), output_format, duration, (encoder,))


def _audio_rate_args(encoder: str, spec: Spec) -> list[str]:
    if spec.bitrate is not None and encoder == "libvorbis":
        return ["-q:a", str(vorbis_quality(spec.bitrate))]
    if spec.bitrate is not None:
        return ["-b:a", str(spec.bitrate)]
    quality = spec.quality or DEFAULT_QUALITY
    if encoder in AUDIO_VBR:
        return ["-q:a", str(AUDIO_VBR[encoder][quality])]
    if encoder in AUDIO_BITRATE:
        return ["-b:a", str(AUDIO_BITRATE[encoder][quality])]
    return []  # lossless


def _audio_bitrate(encoder: str, quality: str | None) -> int:
    return AUDIO_BITRATE[encoder][quality or DEFAULT_QUALITY]


# --- shared --------------------------------------------------------------------------------------


def _input(path: str, start: float) -> list[str]:
    # -ss before -i seeks the input (fast, and frame-accurate when transcoding).
    return (["-ss", _seconds(start)] if start > 0 else []) + input_args(path)


def _window(spec: Spec, media: MediaInfo) -> tuple[float, float | None]:
    """(start, output duration) after trimming; the duration is ``None`` when unknown."""
    start = spec.start or 0.0
    end = spec.end
    if media.duration is not None:
        if start >= media.duration:
            raise InputError(
                f"start {start:g} s is at or past the end of the input ({media.duration:g} s)"
            )
        end = media.duration if end is None else min(end, media.duration)
    return start, None if end is None else end - start
