"""Validating and normalising task options: what the local engine supports, and nothing else.

Numbers may arrive as strings (from a CLI or a form): ``"1280"`` is accepted wherever ``1280`` is.
``width``/``height`` also accept a percentage of the input's size, ``"50%"`` (above 0, at most 100).
An option whose value is ``None`` counts as not given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, TypeVar

from .errors import UnsupportedOperation
from .formats import (
    CODEC_ALIASES,
    DEFAULT_FORMATS,
    DEFAULT_VIDEO_CODECS,
    FORMAT_ALIASES,
    FORMATS,
    LOSSLESS_FORMATS,
    VIDEO_CODECS,
)
from .quality import QUALITY_LEVELS

FITS: Final = ("contain", "cover", "fill")
POSITIONS: Final = (
    "center",
    "top",
    "bottom",
    "left",
    "right",
    "top_left",
    "top_right",
    "bottom_left",
    "bottom_right",
)
MAX_DIMENSION: Final = 16384
MAX_FPS: Final = 60
VIDEO_BITRATE_RANGE: Final = (10_000, 500_000_000)
AUDIO_BITRATE_RANGE: Final = (8_000, 512_000)
# libopus refuses more than 256 kbit/s per channel, and the engine cannot promise stereo.
OPUS_MAX_BITRATE: Final = 256_000

_T = TypeVar("_T")

_LENGTH = "pixels (a whole number, at most 16384) or a percentage of the input such as '50%'"
_FIT = (
    "contain (default: fit inside the box, never upscale; padded to the box only with "
    "'background'), cover (fill the box, crop the overflow), fill (stretch to the box)"
)
_POSITION = "where cover crops / contain pads: " + ", ".join(POSITIONS) + " (default center)"
_QUALITY = ", ".join(QUALITY_LEVELS) + " (default medium)"

SUPPORTED_KINDS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "video": MappingProxyType(
            {
                "format": "mp4 (default), mov, webm",
                "codec": "h264 (mp4/mov, default there), h265 (mp4/mov), vp9 (webm, default "
                "there), av1 (mp4/webm); h265/av1 need the encoder in this ffmpeg",
                "width": _LENGTH + "; alone it caps the width and keeps the aspect ratio",
                "height": _LENGTH + "; alone it caps the height and keeps the aspect ratio",
                "fit": _FIT,
                "position": _POSITION,
                "background": "pad colour for contain, hex such as '#000000'",
                "fps": "frames per second, 1 to 60",
                "bitrate": "video bitrate in bit/s, e.g. 2500000 or '2500k'; with quality it "
                "is a cap",
                "quality": _QUALITY,
                "start": "seconds into the input to start at",
                "end": "seconds into the input to stop at",
            }
        ),
        "image": MappingProxyType(
            {
                "format": "jpeg/jpg (default), png, webp",
                "width": _LENGTH + "; alone it caps the width and keeps the aspect ratio",
                "height": _LENGTH + "; alone it caps the height and keeps the aspect ratio",
                "fit": _FIT,
                "position": _POSITION,
                "background": "pad colour for contain, hex such as '#000000'",
                "quality": _QUALITY + "; ignored for png (lossless)",
                "start": "seconds into a video input to take the frame at (default 0, "
                "clamped to the video's length); ignored for a still image",
            }
        ),
        "audio": MappingProxyType(
            {
                "format": "mp3 (default), aac, ogg (vorbis), opus, wav, flac",
                "bitrate": "bit/s, e.g. 128000 or '128k' (not for wav/flac)",
                "quality": _QUALITY + "; ignored for wav/flac (lossless)",
                "start": "seconds into the input to start at",
                "end": "seconds into the input to stop at",
            }
        ),
    }
)


@dataclass(frozen=True)
class Length:
    """A requested width or height: pixels, or a percentage of the input's size."""

    value: float
    percent: bool = False

    def resolve(self, reference: float) -> float:
        """Pixels, given the input's size along the same axis."""
        return reference * self.value / 100 if self.percent else self.value

    def as_option(self) -> int | str:
        if self.percent:
            return f"{self.value:g}%"
        return int(self.value)


@dataclass(frozen=True)
class Spec:
    """Validated options of one operation, with defaults filled in."""

    kind: str
    format: str
    codec: str | None = None
    width: Length | None = None
    height: Length | None = None
    fit: str = "contain"
    position: str = "center"
    background: str | None = None
    fps: float | None = None
    bitrate: int | None = None
    quality: str | None = None
    start: float | None = None
    end: float | None = None
    given: frozenset[str] = field(default_factory=frozenset)

    def as_options(self) -> dict[str, object]:
        """The normalised options: those given, plus the resolved format (and video codec)."""
        options: dict[str, object] = {"format": self.format}
        if self.codec is not None:
            options["codec"] = self.codec
        for name in sorted(self.given - {"format", "codec"}):
            value = getattr(self, name)
            options[name] = value.as_option() if isinstance(value, Length) else value
        return options


def validate_options(kind: str, options: Mapping[str, object] | None) -> dict[str, object]:
    """Check ``options`` for ``kind`` and return them normalised (see :meth:`Spec.as_options`).

    Raises :class:`UnsupportedOperation` naming the kind, option or value that is not supported and
    listing what is.
    """
    return parse_spec(kind, options).as_options()


def parse_spec(kind: str, options: Mapping[str, object] | None) -> Spec:
    """Validate ``options`` for ``kind`` into a :class:`Spec`."""
    supported = _supported_options(kind)
    if options is not None and not isinstance(options, Mapping):
        raise UnsupportedOperation(f"options must be a mapping of option to value, not {options!r}")
    given = {name: value for name, value in (options or {}).items() if value is not None}
    for name in given:
        if name not in supported:
            raise UnsupportedOperation(
                f"option {name!r} is not supported for kind {kind!r} by the local engine; "
                f"supported options: {', '.join(supported)}",
                option=name,
            )

    def read(name: str, parse: Callable[[str, str, object], _T]) -> _T | None:
        return parse(kind, name, given[name]) if name in given else None

    spec = Spec(
        kind=kind,
        format=read("format", _parse_format) or DEFAULT_FORMATS[kind],
        codec=read("codec", _parse_codec),
        width=read("width", _parse_length),
        height=read("height", _parse_length),
        fit=read("fit", _parse_enum(FITS)) or "contain",
        position=read("position", _parse_enum(POSITIONS)) or "center",
        background=read("background", _parse_background),
        fps=read("fps", _parse_fps),
        bitrate=read("bitrate", _parse_bitrate),
        quality=read("quality", _parse_enum(QUALITY_LEVELS)),
        start=read("start", _parse_seconds),
        end=read("end", _parse_seconds),
        given=frozenset(given),
    )
    return _check_combination(spec)


def _supported_options(kind: object) -> Mapping[str, str]:
    if not isinstance(kind, str) or kind not in SUPPORTED_KINDS:
        raise UnsupportedOperation(
            f"kind {kind!r} is not supported by the local engine (cloud-only kinds need the "
            f"Ittybit API); supported kinds: {', '.join(SUPPORTED_KINDS)}"
        )
    return SUPPORTED_KINDS[kind]


def _check_combination(spec: Spec) -> Spec:
    if spec.kind == "video":
        spec = _with_codec(spec)
    start = spec.start or 0.0
    if spec.end is not None and spec.end <= start:
        raise UnsupportedOperation(
            f"option 'end' ({spec.end:g}) must be after 'start' ({start:g})", option="end"
        )
    if spec.bitrate is not None and spec.format == "opus" and spec.bitrate > OPUS_MAX_BITRATE:
        raise UnsupportedOperation(
            f"option 'bitrate' ({spec.bitrate}) is above what opus supports ({OPUS_MAX_BITRATE})",
            option="bitrate",
        )
    if spec.bitrate is not None and spec.format in LOSSLESS_FORMATS:
        raise UnsupportedOperation(
            f"option 'bitrate' ({spec.bitrate}) does not apply to lossless format "
            f"{spec.format!r}; leave it out or choose mp3, aac, ogg or opus",
            option="bitrate",
        )
    return spec


def _with_codec(spec: Spec) -> Spec:
    if spec.codec is None:
        return replace(spec, codec=DEFAULT_VIDEO_CODECS[spec.format])
    containers = VIDEO_CODECS[spec.codec].containers
    if spec.format not in containers:
        fitting = [name for name, codec in VIDEO_CODECS.items() if spec.format in codec.containers]
        raise UnsupportedOperation(
            f"option 'codec' value {spec.codec!r} does not fit format {spec.format!r}; "
            f"codecs for {spec.format}: {', '.join(fitting)}",
            option="codec",
        )
    return spec


# --- one parser per option: (kind, option name, raw value) -> normalised value -------------------


def _bad(name: str, value: object, expected: str) -> UnsupportedOperation:
    return UnsupportedOperation(
        f"option {name!r} has an unsupported value {value!r}: expected {expected}", option=name
    )


def _choice(name: str, value: object, choices: Mapping[str, str] | tuple[str, ...]) -> str:
    text = value.strip().lower().replace("-", "_") if isinstance(value, str) else None
    if text is None:
        raise _bad(name, value, "one of " + ", ".join(choices))
    if isinstance(choices, Mapping):
        text = choices.get(text, text)
    return text


def _parse_format(kind: str, name: str, value: object) -> str:
    formats = FORMATS[kind]
    text = value.strip().lower().lstrip(".") if isinstance(value, str) else None
    text = FORMAT_ALIASES.get(text, text) if text else text
    if text not in formats:
        raise _bad(name, value, f"one of {', '.join(formats)} for kind {kind!r}")
    assert text is not None
    return text


def _parse_codec(kind: str, name: str, value: object) -> str:
    text = _choice(name, value, CODEC_ALIASES)
    if text not in VIDEO_CODECS:
        raise _bad(name, value, "one of " + ", ".join(VIDEO_CODECS))
    return text


def _parse_enum(choices: tuple[str, ...]) -> Callable[[str, str, object], str]:
    def parse(kind: str, name: str, value: object) -> str:
        text = _choice(name, value, choices)
        if text not in choices:
            raise _bad(name, value, "one of " + ", ".join(choices))
        return text

    return parse


def _number(name: str, value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(name, value, expected)
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise _bad(name, value, expected) from None
    if not math.isfinite(number):
        raise _bad(name, value, expected)
    return number


def _parse_length(kind: str, name: str, value: object) -> Length:
    if isinstance(value, str) and value.strip().endswith("%"):
        percent = _number(name, value.strip()[:-1], _LENGTH)
        if not 0 < percent <= 100:
            raise _bad(name, value, "a percentage above 0% and at most 100%")
        return Length(percent, percent=True)
    pixels = _number(name, value, _LENGTH)
    if not pixels.is_integer() or not 1 <= pixels <= MAX_DIMENSION:
        raise _bad(name, value, _LENGTH)
    return Length(pixels)


def _parse_fps(kind: str, name: str, value: object) -> float:
    fps = _number(name, value, f"a number from 1 to {MAX_FPS}")
    if not 1 <= fps <= MAX_FPS:
        raise _bad(name, value, f"a number from 1 to {MAX_FPS}")
    return int(fps) if fps.is_integer() else fps


_BITRATE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kKmM]?)\s*$")


def _parse_bitrate(kind: str, name: str, value: object) -> int:
    low, high = AUDIO_BITRATE_RANGE if kind == "audio" else VIDEO_BITRATE_RANGE
    expected = f"bits per second from {low} to {high} (suffixes k and M allowed)"
    match = _BITRATE.match(value) if isinstance(value, str) else None
    if match:
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group("unit").lower()]
        bitrate = float(match.group("number")) * scale
    else:
        bitrate = _number(name, value, expected)
    if not low <= bitrate <= high:
        raise _bad(name, value, expected)
    return round(bitrate)


def _parse_seconds(kind: str, name: str, value: object) -> float:
    seconds = _number(name, value, "seconds, a number of at least 0")
    if seconds < 0:
        raise _bad(name, value, "seconds, a number of at least 0")
    return seconds


_HEX_COLOUR = re.compile(r"^#?(?P<hex>[0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


def _parse_background(kind: str, name: str, value: object) -> str:
    match = _HEX_COLOUR.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _bad(name, value, "a hex colour such as '#000000' or '#fff'")
    digits = match.group("hex").lower()
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return "#" + digits
