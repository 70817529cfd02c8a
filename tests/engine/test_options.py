"""Option validation: what is accepted, how it is normalised, and how refusals read."""

from __future__ import annotations

import pytest

from tapestry_media.local.engine import SUPPORTED_KINDS, UnsupportedOperation, validate_options


@pytest.mark.parametrize("kind", ["speech", "subtitles", "nsfw", "thumbnails", "probe", "Video"])
def test_cloud_only_kinds_are_refused_listing_supported_kinds(kind: str) -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        validate_options(kind, {})
    message = str(caught.value)
    assert repr(kind) in message
    assert "supported kinds: video, image, audio" in message
    assert caught.value.option is None


def test_unknown_option_is_named_and_supported_options_listed() -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        validate_options("audio", {"width": 1280})
    message = str(caught.value)
    assert "option 'width'" in message
    assert "kind 'audio'" in message
    assert "supported options: format, bitrate, quality, start, end" in message
    assert caught.value.option == "width"


@pytest.mark.parametrize(
    ("kind", "options", "option"),
    [
        ("video", {"width": 0}, "width"),
        ("video", {"width": -640}, "width"),
        ("video", {"height": "tall"}, "height"),
        ("video", {"width": 12.5}, "width"),
        ("video", {"width": True}, "width"),
        ("video", {"width": "150%"}, "width"),
        ("video", {"width": 20000}, "width"),
        ("video", {"fps": 0}, "fps"),
        ("video", {"fps": 61}, "fps"),
        ("video", {"fps": "nan"}, "fps"),
        ("video", {"format": "gif"}, "format"),
        ("video", {"codec": "mpeg2"}, "codec"),
        ("video", {"fit": "squash"}, "fit"),
        ("video", {"quality": "ultra"}, "quality"),
        ("video", {"bitrate": "fast"}, "bitrate"),
        ("video", {"start": -1}, "start"),
        ("video", {"background": "red"}, "background"),
        ("image", {"format": "gif"}, "format"),
        ("image", {"format": "avif"}, "format"),
        ("audio", {"format": "m4a"}, "format"),
        ("audio", {"bitrate": 5_000_000}, "bitrate"),
    ],
)
def test_bad_values_name_the_option_and_the_value(
    kind: str, options: dict[str, object], option: str
) -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        validate_options(kind, options)
    assert caught.value.option == option
    assert f"option {option!r}" in caught.value.reason
    assert repr(options[option]) in caught.value.reason


@pytest.mark.parametrize(
    ("options", "fitting"),
    [
        ({"format": "webm", "codec": "h264"}, "codecs for webm: vp9, av1"),
        ({"format": "mov", "codec": "vp9"}, "codecs for mov: h264, h265"),
        ({"codec": "vp9"}, "codecs for mp4: h264, h265, av1"),
    ],
)
def test_codec_must_fit_the_container(options: dict[str, object], fitting: str) -> None:
    with pytest.raises(UnsupportedOperation, match="does not fit format") as caught:
        validate_options("video", options)
    assert fitting in caught.value.reason
    assert caught.value.option == "codec"


def test_start_must_come_before_end() -> None:
    with pytest.raises(UnsupportedOperation, match=r"'end' \(2\) must be after 'start' \(5\)"):
        validate_options("video", {"start": 5, "end": 2})
    with pytest.raises(UnsupportedOperation, match=r"'end' \(0\) must be after 'start' \(0\)"):
        validate_options("audio", {"end": 0})


def test_bitrate_is_refused_for_lossless_audio() -> None:
    with pytest.raises(UnsupportedOperation, match="lossless format 'flac'"):
        validate_options("audio", {"format": "flac", "bitrate": 128_000})


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(UnsupportedOperation, match="mapping"):
        validate_options("video", ["width", 1280])  # type: ignore[arg-type]


def test_numeric_strings_from_a_cli_are_accepted_and_normalised() -> None:
    options = validate_options(
        "video",
        {
            "width": "1280",
            "height": "50%",
            "fps": "30",
            "bitrate": "2.5M",
            "start": "1.5",
            "end": " 4 ",
            "format": "MP4",
            "quality": "Very-High",
            "fit": "cover",
            "position": "top-left",
            "background": "#FFF",
        },
    )
    assert options == {
        "format": "mp4",
        "codec": "h264",
        "width": 1280,
        "height": "50%",
        "fps": 30,
        "bitrate": 2_500_000,
        "start": 1.5,
        "end": 4.0,
        "quality": "very_high",
        "fit": "cover",
        "position": "top_left",
        "background": "#ffffff",
    }


def test_defaults_are_filled_in_and_none_means_not_given() -> None:
    assert validate_options("video", {"width": None}) == {"format": "mp4", "codec": "h264"}
    assert validate_options("video", {"format": "webm"}) == {"format": "webm", "codec": "vp9"}
    assert validate_options("video", {"codec": "hevc"}) == {"format": "mp4", "codec": "h265"}
    assert validate_options("image", None) == {"format": "jpeg"}
    assert validate_options("image", {"format": "jpg"}) == {"format": "jpeg"}
    assert validate_options("audio", {"bitrate": "128k"}) == {"format": "mp3", "bitrate": 128_000}


def test_supported_kinds_describe_every_option() -> None:
    assert set(SUPPORTED_KINDS) == {"video", "image", "audio"}
    assert {"width", "height", "fit", "codec", "fps", "start", "end"} <= set(
        SUPPORTED_KINDS["video"]
    )
    assert "end" not in SUPPORTED_KINDS["image"]
    assert all(description for kind in SUPPORTED_KINDS.values() for description in kind.values())
