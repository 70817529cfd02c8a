"""What each ``quality`` level means for each encoder."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

QUALITY_LEVELS: Final = ("very_low", "low", "medium", "high", "very_high")
DEFAULT_QUALITY: Final = "medium"


def _levels(*values: int) -> MappingProxyType[str, int]:
    return MappingProxyType(dict(zip(QUALITY_LEVELS, values, strict=True)))


# Constant rate factor per video encoder (lower is better). x264's "medium" is its own default 23.
VIDEO_CRF: Final = MappingProxyType(
    {
        "libx264": _levels(32, 28, 23, 20, 17),
        "libx265": _levels(34, 31, 28, 24, 20),
        "libvpx-vp9": _levels(45, 39, 33, 28, 23),
        "libsvtav1": _levels(46, 41, 35, 30, 24),
    }
)

# Audio: encoders with a good VBR scale use it (-q:a); the others get a bitrate (-b:a).
AUDIO_VBR: Final = MappingProxyType(
    {
        "libmp3lame": _levels(7, 5, 4, 2, 0),  # LAME -V: lower is better
        "libvorbis": _levels(2, 4, 5, 7, 9),  # higher is better
    }
)
# libvorbis refuses average bitrates outside a window that depends on channels and sample rate,
# so a requested bitrate picks the nearest quality step instead (nominal stereo 44.1 kHz rates).
_VORBIS_NOMINAL: Final = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 500)


def vorbis_quality(bitrate: int) -> int:
    """The libvorbis -q:a step (0..10) whose nominal bitrate is nearest to ``bitrate``."""
    return min(range(len(_VORBIS_NOMINAL)), key=lambda q: abs(_VORBIS_NOMINAL[q] * 1000 - bitrate))


AUDIO_BITRATE: Final = MappingProxyType(
    {
        "aac": _levels(64_000, 96_000, 128_000, 192_000, 256_000),
        "libopus": _levels(32_000, 48_000, 96_000, 128_000, 192_000),
    }
)

# Still images: mjpeg's -q:v is 2 (best) .. 31; libwebp's -quality is 0 .. 100 (best).
JPEG_QSCALE: Final = _levels(10, 7, 4, 3, 2)
WEBP_QUALITY: Final = _levels(50, 65, 80, 90, 95)
