"""Probing real files, and parsing ``ffmpeg -i`` output of other ffmpeg versions."""

from __future__ import annotations

import pytest

from tapestry_media.local.engine import InputError, probe
from tapestry_media.local.engine.probe import parse_probe_output

from .clips import Clips


def test_landscape_clip(clips: Clips) -> None:
    info = probe(clips.landscape)
    assert (info.width, info.height) == (1920, 1080)
    assert (info.display_width, info.display_height) == (1920, 1080)
    assert info.rotation == 0
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.has_video
    assert info.has_audio
    assert "mp4" in (info.format_name or "")
    assert info.pixel_format == "yuv420p"
    assert info.frame_rate == 5
    assert not info.is_still_image


def test_rotated_phone_clip_reports_rotation_and_display_size(clips: Clips) -> None:
    info = probe(clips.rotated)
    assert (info.width, info.height) == (1280, 720)
    assert info.rotation == 90
    assert (info.display_width, info.display_height) == (720, 1280)


def test_clip_without_audio(clips: Clips) -> None:
    info = probe(clips.silent)
    assert info.has_video
    assert not info.has_audio
    assert info.audio_codec is None


def test_still_image(clips: Clips) -> None:
    info = probe(clips.still)
    assert info.is_still_image
    assert (info.width, info.height, info.duration) == (400, 300, None)
    assert info.video_codec == "png"


def test_corrupt_file_is_an_input_error_with_ffmpegs_reason(clips: Clips) -> None:
    with pytest.raises(InputError) as caught:
        probe(clips.corrupt)
    assert "corrupt.mp4" in caught.value.reason
    assert "Invalid data found when processing input" in caught.value.reason
    assert "@ 0x" not in caught.value.reason
    assert caught.value.stderr


def test_missing_file(tmp_path: object) -> None:
    with pytest.raises(InputError, match="input file not found"):
        probe("/nonexistent/clip.mp4")


OLD_FFMPEG_PHONE_CLIP = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'IMG_0001.MOV':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 11000 kb/s
    Stream #0:0(und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), \
1920x1080, 10000 kb/s, 29.97 fps, 29.97 tbr, 600 tbn, 600 tbc (default)
    Metadata:
      rotate          : 90
      creation_time   : 2021-05-01T10:00:00.000000Z
    Side data:
      displaymatrix: rotation of -90.00 degrees
    Stream #0:1(und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 96 kb/s
"""

OLDEST_STYLE_ROTATE_TAG = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'old.mp4':
  Duration: 00:00:05.00, start: 0.000000, bitrate: 900 kb/s
    Stream #0:0(und): Video: h264 (avc1 / 0x31637661), yuv420p, 640x480 [SAR 4:3 DAR 16:9], 25 fps
    Metadata:
      rotate          : 180
"""

MP3_WITH_COVER_ART = """\
Input #0, mp3, from 'song.mp3':
  Duration: 00:03:00.05, start: 0.025057, bitrate: 192 kb/s
  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 192 kb/s
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc), 500x500 [SAR 1:1 DAR 1:1], 90k tbr \
(attached pic)
"""


def test_parses_older_ffmpeg_output_with_clockwise_rotate_tag() -> None:
    info = parse_probe_output(OLD_FFMPEG_PHONE_CLIP.splitlines())
    assert info is not None
    # Display matrix -90 (counter-clockwise) == rotate tag 90 (clockwise) == 270 here.
    assert info.rotation == 270
    assert (info.display_width, info.display_height) == (1080, 1920)
    assert info.duration == pytest.approx(62.5)
    assert info.video_codec == "hevc"
    assert info.frame_rate == pytest.approx(29.97)


def test_parses_rotate_tag_and_sample_aspect_ratio() -> None:
    info = parse_probe_output(OLDEST_STYLE_ROTATE_TAG.splitlines())
    assert info is not None
    assert info.rotation == 180
    assert (info.display_width, info.display_height) == (640, 480)
    assert info.sample_aspect_ratio == pytest.approx(4 / 3)
    assert not info.has_audio


def test_cover_art_is_not_a_video_stream() -> None:
    info = parse_probe_output(MP3_WITH_COVER_ART.splitlines())
    assert info is not None
    assert info.has_audio
    assert not info.has_video
    assert info.width is None


def test_no_input_line_means_unreadable() -> None:
    assert parse_probe_output(["Error opening input file x.mp4."]) is None
