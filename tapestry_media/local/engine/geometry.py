"""Output frame size: the width/height/fit/position box arithmetic, done in Python.

Computing the numbers here (rather than in ffmpeg scale expressions) keeps them testable and lets
the engine report the output size it asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .options import Spec


@dataclass(frozen=True)
class Frame:
    """Scale the picture to ``scale_*``, then crop or pad it to ``width`` x ``height``."""

    scale_width: int
    scale_height: int
    width: int
    height: int
    offset_x: int = 0
    offset_y: int = 0
    pad_colour: str | None = None

    def filters(self) -> list[str]:
        """The ffmpeg video filters (scale, then crop or pad) producing this frame."""
        chain = [f"scale={self.scale_width}:{self.scale_height}"]
        if self.pad_colour is not None:
            chain.append(
                f"pad={self.width}:{self.height}:{self.offset_x}:{self.offset_y}:"
                f"color=0x{self.pad_colour.lstrip('#')}"
            )
        elif (self.scale_width, self.scale_height) != (self.width, self.height):
            chain.append(f"crop={self.width}:{self.height}:{self.offset_x}:{self.offset_y}")
        chain.append("setsar=1")
        return chain


def plan_frame(source_width: float, source_height: float, spec: Spec, *, even: bool) -> Frame:
    """Where ``source_*`` is the upright, square-pixel size of the input picture.

    One of width/height caps that dimension (never upscaling) and keeps the aspect ratio. Both
    make a box: ``contain`` fits inside it without upscaling (padded to the box when
    ``background`` is set), ``cover`` scales to fill it and crops the overflow, ``fill`` stretches
    to it. ``even`` rounds every dimension to a multiple of 2, as 4:2:0 video needs.
    """
    box_w = spec.width.resolve(source_width) if spec.width else None
    box_h = spec.height.resolve(source_height) if spec.height else None
    if box_w is None or box_h is None:
        cap_w = box_w if box_w is not None else math.inf
        cap_h = box_h if box_h is not None else math.inf
        factor = min(cap_w / source_width, cap_h / source_height, 1.0)
        return _scaled(source_width * factor, source_height * factor, cap_w, cap_h, even)
    out_w, out_h = _length(box_w, box_w, even), _length(box_h, box_h, even)
    if spec.fit == "fill":
        return Frame(out_w, out_h, out_w, out_h)
    if spec.fit == "cover":
        factor = max(out_w / source_width, out_h / source_height)
        scale_w = max(out_w, _length(source_width * factor, math.inf, even))
        scale_h = max(out_h, _length(source_height * factor, math.inf, even))
        return _placed(Frame(scale_w, scale_h, out_w, out_h), spec.position, even)
    factor = min(box_w / source_width, box_h / source_height, 1.0)
    inner = _scaled(source_width * factor, source_height * factor, box_w, box_h, even)
    if spec.background is None:
        return inner
    padded = Frame(inner.width, inner.height, out_w, out_h, pad_colour=spec.background)
    return _placed(padded, spec.position, even)


def _scaled(width: float, height: float, cap_w: float, cap_h: float, even: bool) -> Frame:
    out_w, out_h = _length(width, cap_w, even), _length(height, cap_h, even)
    return Frame(out_w, out_h, out_w, out_h)


def _length(value: float, cap: float, even: bool) -> int:
    """Nearest whole (or even) number of pixels, never above ``cap``, at least 1 (or 2)."""
    step = 2 if even else 1
    pixels = round(value / step) * step
    if pixels > cap:
        pixels = math.floor(cap / step) * step
    return max(step, pixels)


def _placed(frame: Frame, position: str, even: bool) -> Frame:
    """Set the crop (scaled > frame) or pad (scaled < frame) offsets for ``position``."""
    parts = set(position.split("_"))
    fx = 0.0 if "left" in parts else 1.0 if "right" in parts else 0.5
    fy = 0.0 if "top" in parts else 1.0 if "bottom" in parts else 0.5
    spare_x = abs(frame.scale_width - frame.width)
    spare_y = abs(frame.scale_height - frame.height)
    step = 2 if even else 1
    return Frame(
        frame.scale_width,
        frame.scale_height,
        frame.width,
        frame.height,
        offset_x=math.floor(spare_x * fx / step) * step,
        offset_y=math.floor(spare_y * fy / step) * step,
        pad_colour=frame.pad_colour,
    )
