"""The box arithmetic behind width/height/fit/position, without running ffmpeg."""

from __future__ import annotations

import pytest

from tapestry_media.local.engine.geometry import plan_frame
from tapestry_media.local.engine.options import parse_spec


def frame(source: tuple[int, int], options: dict[str, object], *, even: bool = True) -> list[str]:
    planned = plan_frame(*source, parse_spec("video", options), even=even)
    return [f"{planned.width}x{planned.height}", *planned.filters()]


@pytest.mark.parametrize(
    ("source", "options", "expected"),
    [
        ((1920, 1080), {"width": 1280}, ["1280x720", "scale=1280:720", "setsar=1"]),
        ((1080, 1920), {"width": 1280}, ["1080x1920", "scale=1080:1920", "setsar=1"]),
        ((1920, 1080), {"height": 480}, ["854x480", "scale=854:480", "setsar=1"]),
        ((1920, 1080), {"width": "50%"}, ["960x540", "scale=960:540", "setsar=1"]),
        ((1920, 1080), {"width": 641}, ["640x360", "scale=640:360", "setsar=1"]),
        ((1919, 1079), {}, ["1920x1080", "scale=1920:1080", "setsar=1"]),
        ((1920, 1080), {"width": 640, "height": 640}, ["640x360", "scale=640:360", "setsar=1"]),
        (
            (1920, 1080),
            {"width": 640, "height": 640, "fit": "cover"},
            ["640x640", "scale=1138:640", "crop=640:640:248:0", "setsar=1"],
        ),
        (
            (1920, 1080),
            {"width": 640, "height": 640, "fit": "cover", "position": "right"},
            ["640x640", "scale=1138:640", "crop=640:640:498:0", "setsar=1"],
        ),
        (
            (320, 240),
            {"width": 640, "height": 640, "fit": "cover"},
            ["640x640", "scale=854:640", "crop=640:640:106:0", "setsar=1"],
        ),
        (
            (1920, 1080),
            {"width": 640, "height": 640, "background": "#000"},
            ["640x640", "scale=640:360", "pad=640:640:0:140:color=0x000000", "setsar=1"],
        ),
        (
            (1920, 1080),
            {"width": 333, "height": 333, "fit": "fill"},
            ["332x332", "scale=332:332", "setsar=1"],
        ),
    ],
)
def test_frame_plans(
    source: tuple[int, int], options: dict[str, object], expected: list[str]
) -> None:
    assert frame(source, options) == expected


def test_images_may_have_odd_dimensions() -> None:
    assert (
        frame((1920, 1080), {"width": 333, "height": 333, "fit": "fill"}, even=False)[0]
        == "333x333"
    )
