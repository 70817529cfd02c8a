"""The output formats and codecs the engine can produce, and the ffmpeg encoders behind them."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class OutputFormat:
    """A container/file type: its canonical name, file suffix, MIME type and ffmpeg muxer."""

    name: str
    kind: str
    suffix: str
    mime_type: str
    muxer: str


@dataclass(frozen=True)
class VideoCodec:
    """A video codec option value, the ffmpeg encoder used for it, and the containers it fits."""

    name: str
    encoder: str
    containers: frozenset[str]


def _formats(kind: str, *rows: tuple[str, str, str, str]) -> MappingProxyType[str, OutputFormat]:
    return MappingProxyType(
        {name: OutputFormat(name, kind, suffix, mime, muxer) for name, suffix, mime, muxer in rows}
    )


FORMATS: Final = MappingProxyType(
    {
        "video": _formats(
            "video",
            ("mp4", ".mp4", "video/mp4", "mp4"),
            ("mov", ".mov", "video/quicktime", "mov"),
            ("webm", ".webm", "video/webm", "webm"),
        ),
        "image": _formats(
            "image",
            ("jpeg", ".jpg", "image/jpeg", "image2"),
            ("png", ".png", "image/png", "image2"),
            ("webp", ".webp", "image/webp", "webp"),
        ),
        "audio": _formats(
            "audio",
            ("mp3", ".mp3", "audio/mpeg", "mp3"),
            ("aac", ".aac", "audio/aac", "adts"),
            ("ogg", ".ogg", "audio/ogg", "ogg"),
            ("opus", ".opus", "audio/ogg", "opus"),
            ("wav", ".wav", "audio/wav", "wav"),
            ("flac", ".flac", "audio/flac", "flac"),
        ),
    }
)
DEFAULT_FORMATS: Final = MappingProxyType({"video": "mp4", "image": "jpeg", "audio": "mp3"})
FORMAT_ALIASES: Final = MappingProxyType({"jpg": "jpeg"})

VIDEO_CODECS: Final = MappingProxyType(
    {
        "h264": VideoCodec("h264", "libx264", frozenset({"mp4", "mov"})),
        "h265": VideoCodec("h265", "libx265", frozenset({"mp4", "mov"})),
        "vp9": VideoCodec("vp9", "libvpx-vp9", frozenset({"webm"})),
        "av1": VideoCodec("av1", "libsvtav1", frozenset({"mp4", "webm"})),
    }
)
CODEC_ALIASES: Final = MappingProxyType({"hevc": "h265", "avc": "h264", "h.264": "h264"})
DEFAULT_VIDEO_CODECS: Final = MappingProxyType({"mp4": "h264", "mov": "h264", "webm": "vp9"})

# The audio track inside a video container.
VIDEO_AUDIO_ENCODERS: Final = MappingProxyType({"mp4": "aac", "mov": "aac", "webm": "libopus"})
AUDIO_ENCODERS: Final = MappingProxyType(
    {
        "mp3": "libmp3lame",
        "aac": "aac",
        "ogg": "libvorbis",
        "opus": "libopus",
        "wav": "pcm_s16le",
        "flac": "flac",
    }
)
IMAGE_ENCODERS: Final = MappingProxyType({"jpeg": "mjpeg", "png": "png", "webp": "libwebp"})
LOSSLESS_FORMATS: Final = frozenset({"wav", "flac", "png"})

# The demuxers inputs may be read with (ffmpeg -format_whitelist): one or more for every default
# upload extension, none that opens other files or URLs named inside the input. mov covers
# mp4/m4v/m4a/heic/avif (its dref following is off by default); images go through image2 or the
# *_pipe demuxers, whichever probes higher.
INPUT_DEMUXERS: Final = (
    "mov",  # mp4 mov m4v m4a heic avif
    "matroska",  # mkv webm
    "webm",
    "avi",
    "image2",  # jpg jpeg png webp gif by extension
    "jpeg_pipe",
    "png_pipe",
    "webp_pipe",
    "webp_anim",
    "gif",
    "gif_pipe",
    "mp3",
    "aac",
    "wav",
    "ogg",  # ogg opus
    "flac",
)
# Formats that are lists of other resources. The allow-list already refuses them; this is the
# second line should a probe ever name one.
REFERENCING_FORMATS: Final = frozenset(
    {"dash", "hls", "concat", "imf", "sdp", "rtp", "rtsp", "webm_dash_manifest", "avisynth"}
)
