"""Inputs are read only through allowed demuxers and the file protocol (issue 11, item 1)."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import pytest

from tapestry_media.local.engine import InputRefused, probe, run_operation
from tapestry_media.local.engine.sniff import manifest_kind

from .clips import Clips

# The package exports the function ``probe``, which hides the module of the same name.
probe_module = importlib.import_module("tapestry_media.local.engine.probe")

DASH = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S"
 minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period>
<AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000" width="320"
 height="180" codecs="avc1.42c00d"><BaseURL>{ref}</BaseURL></Representation></AdaptationSet>
</Period></MPD>
"""

# (extension, kind, ffmpeg arguments making a small file of it)
_VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5", "-t", "1"]
_IMAGE = ["-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1"]
_AUDIO = ["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "0.5"]
SAMPLES = [
    ("mp4", "video", [*_VIDEO, "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    ("mov", "video", [*_VIDEO, "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    ("m4v", "video", [*_VIDEO, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4"]),
    ("webm", "video", [*_VIDEO, "-c:v", "libvpx-vp9", "-deadline", "realtime"]),
    ("mkv", "video", [*_VIDEO, "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    ("avi", "video", [*_VIDEO, "-c:v", "mpeg4"]),
    ("jpg", "image", _IMAGE),
    ("jpeg", "image", _IMAGE),
    ("png", "image", _IMAGE),
    ("webp", "image", [*_IMAGE, "-c:v", "libwebp"]),
    ("gif", "image", _IMAGE),
    # HEIF is ISO-BMFF read by the mov demuxer; this ffmpeg has no HEIF muxer, so the sample is
    # an HEVC picture in that container under its upload extension.
    ("heic", "image", [*_IMAGE, "-c:v", "libx265", "-x265-params", "log-level=error", "-f", "mp4"]),
    ("avif", "image", [*_IMAGE, "-c:v", "libsvtav1", "-pix_fmt", "yuv420p"]),
    ("mp3", "audio", _AUDIO),
    ("m4a", "audio", [*_AUDIO, "-c:a", "aac"]),
    ("aac", "audio", [*_AUDIO, "-c:a", "aac"]),
    ("wav", "audio", _AUDIO),
    ("ogg", "audio", [*_AUDIO, "-c:a", "libvorbis"]),
    ("opus", "audio", [*_AUDIO, "-c:a", "libopus"]),
    ("flac", "audio", _AUDIO),
]


@pytest.mark.parametrize(("extension", "kind", "args"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_default_upload_extension_is_processed(
    ffmpeg: str, tmp_path: Path, extension: str, kind: str, args: list[str]
) -> None:
    """Positive control for the allow-list: nothing a user may upload is refused."""
    source = tmp_path / f"sample.{extension}"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", *args, str(source)], check=True
    )
    result = run_operation(kind, source, tmp_path / "out", {})
    assert Path(result.path).stat().st_size > 0


def test_dash_manifest_is_refused_by_ffmpegs_allow_list(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the content sniff out of the way, ffmpeg's -format_whitelist itself refuses it."""
    monkeypatch.setattr(probe_module, "manifest_kind", lambda path: None)
    hostile = tmp_path / "x.mp4"
    hostile.write_text(DASH.format(ref=f"file://{clips.small}"))
    with pytest.raises(InputRefused) as caught:
        probe(hostile)
    assert any("not on whitelist" in line for line in caught.value.stderr)
    assert str(tmp_path) not in caught.value.reason


def test_a_probed_manifest_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["Input #0, dash, from 'file:/x.mp4':", "  Stream #0:0: Video: h264, yuv420p, 320x180"]
    monkeypatch.setattr(probe_module, "manifest_kind", lambda path: None)
    completed = subprocess.CompletedProcess([], 1, b"", "\n".join(lines).encode())
    monkeypatch.setattr(probe_module.subprocess, "run", lambda *a, **k: completed)
    with pytest.raises(InputRefused, match="dash"):
        probe(__file__)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        ("\ufeff<?xml version='1.0'?><MPD>", "dash"),
        ("<?xml version='1.0'?>\n<!-- made by hand -->\n<MPD type='static'>", "dash"),
        ("\n\n#EXTM3U\n#EXTINF:1,\nv.mp4\n", "hls"),
        ("ffconcat version 1.0\nfile 'v.mp4'\n", "concat"),
        ("v=0\no=- 0 0 IN IP4 127.0.0.1\n", "sdp"),
        ("<?xml version='1.0'?><CompositionPlaylist>", "imf"),
        ("ftypisom and then bytes", None),
    ],
)
def test_manifest_sniff(tmp_path: Path, head: str, kind: str | None) -> None:
    path = tmp_path / "x.mp4"
    path.write_text(head, encoding="utf-8")
    assert manifest_kind(path) == kind
