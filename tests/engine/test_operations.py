"""run_operation end to end with the real ffmpeg: every output is probed and checked."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tapestry_media.local.engine import (
    DEFAULT_PRESET,
    EngineError,
    EngineResult,
    EngineTimeout,
    InputError,
    MediaInfo,
    UnsupportedOperation,
    build_command,
    commands,
    probe,
    run_operation,
)
from tapestry_media.local.engine.binary import available_encoders

from .clips import Clips


def probe_text(ffmpeg: str, path: str) -> str:
    """ffmpeg's own stream summary, to check what MediaInfo does not carry."""
    completed = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", path], capture_output=True, check=False
    )
    return completed.stderr.decode()


def decode_errors(ffmpeg: str, path: str) -> str:
    """Decode every frame; returns what ffmpeg complained about (empty when clean)."""
    completed = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-f", "null", "-"],
        capture_output=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return completed.stderr.decode()


def first_frame(ffmpeg: str, path: str | Path, video_filter: str = "null") -> bytes:
    """The first frame as 16x16 grey pixels (applying ``video_filter`` first)."""
    completed = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-frames:v", "1",
         "-vf", f"{video_filter},scale=16:16,format=gray", "-f", "rawvideo", "-"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    return completed.stdout


def difference(a: bytes, b: bytes) -> float:
    assert len(a) == len(b) == 256
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def top_level_boxes(path: str) -> list[str]:
    """The types of an MP4/MOV file's top-level boxes, in file order."""
    boxes = []
    with open(path, "rb") as handle:
        while header := handle.read(8):
            size, box_type = struct.unpack(">I4s", header)
            boxes.append(box_type.decode("latin-1"))
            if size == 1:  # 64-bit size follows the type
                size = struct.unpack(">Q", handle.read(8))[0]
                handle.seek(size - 16, os.SEEK_CUR)
            elif size == 0:  # box runs to the end of the file
                break
            else:
                handle.seek(size - 8, os.SEEK_CUR)
    return boxes


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_1080p_to_1280_wide_mp4(clips: Clips, ffmpeg: str, tmp_path: Path) -> None:
    result = run_operation("video", clips.landscape, tmp_path, {"width": 1280, "format": "mp4"})

    assert result == EngineResult(
        path=str(tmp_path / "landscape.mp4"),
        kind="video",
        format="mp4",
        mime_type="video/mp4",
        width=1280,
        height=720,
        duration=pytest.approx(2.0, abs=0.1),  # type: ignore[arg-type]
        filesize=os.path.getsize(tmp_path / "landscape.mp4"),
    )
    info = probe(result.path)
    assert (info.width, info.height, info.rotation) == (1280, 720, 0)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.pixel_format == "yuv420p"
    assert ", yuv420p(" in probe_text(ffmpeg, result.path)
    assert decode_errors(ffmpeg, result.path) == ""
    boxes = top_level_boxes(result.path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert files_in(tmp_path) == ["landscape.mp4"]


def test_portrait_is_never_upscaled_by_width(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("video", clips.portrait, tmp_path, {"width": 1280})
    assert (result.width, result.height) == (1080, 1920)
    info = probe(result.path)
    assert (info.width, info.height) == (1080, 1920)


def test_rotated_phone_clip_comes_out_upright_without_rotation_tag(
    clips: Clips, ffmpeg: str, tmp_path: Path
) -> None:
    assert probe(clips.rotated).rotation == 90
    result = run_operation("video", clips.rotated, tmp_path, {"width": 1280})
    info = probe(result.path)
    assert (info.width, info.height) == (720, 1280)
    assert info.rotation == 0
    text = probe_text(ffmpeg, result.path).lower()
    assert "rotation" not in text
    assert "displaymatrix" not in text.replace(" ", "")
    # The picture itself is turned: the stored frame rotated 90 degrees counter-clockwise (what
    # the tag asked a player to do), and clearly not clockwise.
    output = first_frame(ffmpeg, result.path)
    upright = first_frame(ffmpeg, clips.rotated_source, "transpose=cclock")
    wrong_way = first_frame(ffmpeg, clips.rotated_source, "transpose=clock")
    assert difference(output, upright) < 8
    assert difference(output, wrong_way) > 3 * difference(output, upright) + 10


def test_webm_is_vp9_and_opus(clips: Clips, ffmpeg: str, tmp_path: Path) -> None:
    result = run_operation("video", clips.small, tmp_path, {"format": "webm"})
    assert result.path.endswith(".webm")
    assert result.mime_type == "video/webm"
    info = probe(result.path)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")
    assert "webm" in (info.format_name or "")
    assert decode_errors(ffmpeg, result.path) == ""


@pytest.mark.parametrize(
    ("options", "codec"),
    [({"codec": "h265"}, "hevc"), ({"format": "webm", "codec": "av1"}, "av1")],
)
def test_h265_and_av1_when_this_ffmpeg_has_the_encoder(
    clips: Clips, ffmpeg: str, tmp_path: Path, options: dict[str, object], codec: str
) -> None:
    encoder = {"hevc": "libx265", "av1": "libsvtav1"}[codec]
    if encoder not in available_encoders(ffmpeg):
        with pytest.raises(UnsupportedOperation, match=encoder):
            run_operation("video", clips.small, tmp_path, options)
        return
    result = run_operation("video", clips.small, tmp_path, options)
    assert probe(result.path).video_codec == codec
    assert decode_errors(ffmpeg, result.path) == ""


def test_mov_keeps_moov_first(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("video", clips.small, tmp_path, {"format": "mov"})
    assert result.mime_type == "video/quicktime"
    boxes = top_level_boxes(result.path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_jpg_poster_at_one_second(clips: Clips, tmp_path: Path) -> None:
    result = run_operation(
        "image", clips.landscape, tmp_path, {"format": "jpg", "start": 1, "width": 640}
    )
    assert result.path == str(tmp_path / "landscape.jpg")
    assert (result.kind, result.format, result.mime_type) == ("image", "jpeg", "image/jpeg")
    assert (result.width, result.height, result.duration) == (640, 360, None)
    info = probe(result.path)
    assert (info.video_codec, info.width, info.height) == ("mjpeg", 640, 360)


def test_poster_past_the_end_is_clamped_to_the_last_frame(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("image", clips.landscape, tmp_path, {"start": 99, "format": "png"})
    assert (result.width, result.height) == (1920, 1080)
    assert probe(result.path).video_codec == "png"


def test_still_image_resized_to_webp_keeps_odd_sizes(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("image", clips.still, tmp_path, {"format": "webp", "width": 201})
    assert (result.width, result.height) == (201, 151)
    assert result.mime_type == "image/webp"
    assert probe(result.path).video_codec == "webp"


def test_mp3_extraction(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("audio", clips.landscape, tmp_path, {"format": "mp3"})
    assert (result.kind, result.format, result.mime_type) == ("audio", "mp3", "audio/mpeg")
    assert (result.width, result.height) == (None, None)
    info = probe(result.path)
    assert info.audio_codec == "mp3"
    assert not info.has_video
    assert info.duration == pytest.approx(probe(clips.landscape).duration, abs=0.1)


@pytest.mark.parametrize(
    ("audio_format", "codec"),
    [("aac", "aac"), ("ogg", "vorbis"), ("opus", "opus"), ("wav", "pcm_s16le"), ("flac", "flac")],
)
def test_audio_formats_with_trimming(
    clips: Clips, tmp_path: Path, audio_format: str, codec: str
) -> None:
    options = {"format": audio_format, "start": "0.5", "end": "1.5"}
    result = run_operation("audio", clips.landscape, tmp_path, options)
    assert result.path.endswith("." + audio_format)
    assert probe(result.path).audio_codec == codec
    assert result.duration == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("audio_format", ["mp3", "aac", "ogg", "opus"])
@pytest.mark.parametrize("bitrate", ["8k", "256k"])
def test_audio_bitrate_extremes_are_encodable(
    clips: Clips, tmp_path: Path, audio_format: str, bitrate: str
) -> None:
    options = {"format": audio_format, "bitrate": bitrate, "end": 0.5}
    result = run_operation("audio", clips.small, tmp_path, options)
    assert result.filesize > 0


def test_audio_from_a_clip_without_audio_is_an_input_error(clips: Clips, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no audio stream"):
        run_operation("audio", clips.silent, tmp_path, {})
    assert files_in(tmp_path) == []


def test_clip_without_audio_gives_video_without_audio(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("video", clips.silent, tmp_path, {})
    info = probe(result.path)
    assert info.has_video
    assert not info.has_audio
    assert (result.width, result.height) == (320, 180)


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ({"height": 360}, (640, 360)),
        ({"width": "25%"}, (480, 270)),
        ({"width": 640, "height": 640}, (640, 360)),
        ({"width": 640, "height": 640, "fit": "contain"}, (640, 360)),
        ({"width": 640, "height": 640, "fit": "cover"}, (640, 640)),
        ({"width": 640, "height": 640, "fit": "fill"}, (640, 640)),
        ({"width": 640, "height": 640, "background": "#202020"}, (640, 640)),
        ({"width": 641}, (640, 360)),
        ({"width": 333, "height": 333, "fit": "cover"}, (332, 332)),
    ],
)
def test_sizes(
    clips: Clips, tmp_path: Path, options: dict[str, object], size: tuple[int, int]
) -> None:
    result = run_operation("video", clips.landscape, tmp_path, {**options, "end": 0.4})
    info = probe(result.path)
    assert (info.width, info.height) == size
    assert (result.width, result.height) == size


def test_trim_fps_and_quality(clips: Clips, ffmpeg: str, tmp_path: Path) -> None:
    options = {"start": 0.25, "end": 0.75, "fps": "10", "quality": "low", "bitrate": "300k"}
    result = run_operation("video", clips.small, tmp_path, options)
    info = probe(result.path)
    assert info.duration == pytest.approx(0.5, abs=0.1)
    assert info.frame_rate == 10
    assert decode_errors(ffmpeg, result.path) == ""


@pytest.mark.parametrize(
    ("kind", "options", "named"),
    [
        ("speech", {}, "supported kinds: video, image, audio"),
        ("video", {"resolution": "720p"}, "supported options: format, codec, width"),
        ("video", {"fps": 0}, "option 'fps' has an unsupported value 0"),
        ("video", {"format": "gif"}, "option 'format' has an unsupported value 'gif'"),
    ],
)
def test_unsupported_requests_fail_before_anything_runs(
    clips: Clips, tmp_path: Path, kind: str, options: dict[str, object], named: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(UnsupportedOperation, match=named):
        run_operation(kind, clips.small, out, options)
    assert not out.exists()


def test_corrupt_input_is_an_input_error_with_ffmpegs_reason(clips: Clips, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_operation("video", clips.corrupt, tmp_path, {"width": 1280})
    assert "Invalid data found when processing input" in caught.value.reason
    assert files_in(tmp_path) == []


def test_still_image_cannot_become_a_video(clips: Clips, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="still image"):
        run_operation("video", clips.still, tmp_path, {})


def test_start_past_the_end_of_a_video_is_an_input_error(clips: Clips, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="past the end"):
        run_operation("video", clips.small, tmp_path, {"start": 5})


def test_progress_is_monotonic_with_intermediate_values_and_ends_at_100(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "PROGRESS_INTERVAL", 0.05)
    seen: list[float] = []
    run_operation(
        "video", clips.landscape, tmp_path, {"fps": 30, "width": 1280}, progress=seen.append
    )
    assert seen[0] == 0.0
    assert seen[-1] == 100.0
    assert seen == sorted(set(seen)), seen
    assert any(0 < value < 100 for value in seen), seen


def test_timeout_kills_ffmpeg_and_leaves_no_partial_file(clips: Clips, tmp_path: Path) -> None:
    # 120 full-HD frames take a couple of seconds to encode; the timeout hits mid-encode.
    with pytest.raises(EngineTimeout, match=r"video operation did not finish within 0\.5 s"):
        run_operation("video", clips.landscape, tmp_path, {"fps": 60}, timeout=0.5)
    assert files_in(tmp_path) == []


def test_raising_from_the_progress_callback_cancels(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "PROGRESS_INTERVAL", 0.05)

    def cancel(percent: float) -> None:
        if percent > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_operation("video", clips.landscape, tmp_path, {"fps": 60}, progress=cancel)
    assert files_in(tmp_path) == []


def test_encoder_failure_is_an_engine_error_with_ffmpegs_reason(
    clips: Clips, ffmpeg: str, tmp_path: Path
) -> None:
    if "libx265" not in available_encoders(ffmpeg):
        pytest.skip("this ffmpeg has no libx265")
    # Validation allows a 2x2 video; x265 itself refuses such a small picture.
    with pytest.raises(EngineError) as caught:
        run_operation("video", clips.small, tmp_path, {"codec": "h265", "width": 2})
    assert type(caught.value) is EngineError
    assert "Image size is too small (2x2)" in caught.value.reason
    assert caught.value.stderr
    assert files_in(tmp_path) == []


def test_input_replaced_by_garbage_after_probing_is_an_input_error(
    clips: Clips, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.mp4"
    shutil.copy(clips.small, victim)

    def sabotage(percent: float) -> None:
        if percent == 0.0:  # reported after probing, just before ffmpeg starts
            victim.write_bytes(clips.corrupt.read_bytes())

    out = tmp_path / "out"
    with pytest.raises(InputError, match="Invalid data found"):
        run_operation("video", victim, out, {}, progress=sabotage)
    assert files_in(out) == []


def test_long_basename_still_works(clips: Clips, tmp_path: Path) -> None:
    result = run_operation("image", clips.small, tmp_path, {}, basename="x" * 240)
    assert os.path.basename(result.path) == "x" * 240 + ".jpg"


def test_input_path_starting_with_a_dash(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(clips.small, tmp_path / "-y.mp4")
    result = run_operation("audio", "-y.mp4", "out", {"format": "wav"})
    assert result.path == str(tmp_path / "out" / "-y.wav")
    assert probe(result.path).audio_codec == "pcm_s16le"


def test_basename_and_replacing_an_existing_output(clips: Clips, tmp_path: Path) -> None:
    (tmp_path / "poster.jpg").write_bytes(b"old")
    result = run_operation("image", clips.small, tmp_path, {}, basename="poster")
    assert result.path == str(tmp_path / "poster.jpg")
    assert os.path.getsize(result.path) == result.filesize > 3
    with pytest.raises(ValueError, match="plain file name"):
        run_operation("image", clips.small, tmp_path, {}, basename="../escape")


def test_build_command_is_what_runs(
    clips: Clips, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = tmp_path / "direct.mp4"
    argv = build_command("video", clips.landscape, output, {"width": 1280})
    assert argv[argv.index("-preset") + 1] == DEFAULT_PRESET == "veryfast"
    assert argv[argv.index("-pix_fmt") + 1] == "yuv420p"
    assert argv[argv.index("-movflags") + 1] == "+faststart"
    assert "-nostdin" in argv
    assert argv[argv.index("-i") + 1] == f"file:{clips.landscape}"
    assert argv[-1] == f"file:{output}"

    with caplog.at_level(logging.DEBUG, logger="tapestry_media.engine"):
        run_operation("video", clips.landscape, tmp_path, {"width": 1280})
    logged = [r.getMessage() for r in caplog.records if r.name == "tapestry_media.engine"]
    assert any("-crf 23" in message and "scale=1280:720" in message for message in logged)


def test_build_command_accepts_known_media_without_probing(tmp_path: Path) -> None:
    media = MediaInfo(duration=10.0, width=3840, height=2160, has_video=True, format_name="mov,mp4")
    options = {"width": 1280}
    argv = build_command(
        "video", tmp_path / "missing.mp4", tmp_path / "o.mp4", options, media=media
    )
    assert "scale=1280:720,setsar=1" in argv
    assert "-an" in argv
