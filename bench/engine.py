"""Wrapper overhead of the local engine: run_operation vs. the identical ffmpeg argv run directly.

    python bench/engine.py [--seconds 10] [--runs 3]

Generates a 1080p clip (testsrc2 + sine), then interleaves runs of
(a) run_operation("video", clip, ..., {"width": 1280, "format": "mp4"}) and
(b) the same argv (from the engine's own command builder, so preset and CRF match) run directly,
and prints median and min-max wall time of each, the ratio engine/direct and the output sizes.
The difference is what the engine adds: probing input and output, progress parsing, threads.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tapestry_media.local.engine import (
    DEFAULT_PRESET,
    build_command,
    find_ffmpeg,
    run_operation,
)

OPTIONS: dict[str, object] = {"width": 1280, "format": "mp4"}


def make_clip(ffmpeg: str, path: Path, seconds: float) -> None:
    subprocess.run(
        [
            ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip


def run_engine(clip: Path, out_dir: Path) -> int:
    result = run_operation("video", clip, out_dir, OPTIONS, basename="engine")
    return result.filesize


def run_direct(argv: list[str], output: Path) -> int:
    completed = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"direct ffmpeg failed: {completed.stderr.decode()[-2000:]}")
    return output.stat().st_size


def timed(action: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    size = action()
    return time.perf_counter() - started, size


def summary(label: str, times: list[float], size: int, seconds: float) -> str:
    median = statistics.median(times)
    spread = f"{min(times):.2f}-{max(times):.2f} s"
    return f"{label:<8}{median:>8.2f} s  {spread:>14}  {seconds / median:>6.2f}x  {size:>12,d} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args()

    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        clip = root / "clip1080p.mp4"
        started = time.perf_counter()
        make_clip(ffmpeg, clip, args.seconds)
        made_in = time.perf_counter() - started
        direct_output = root / "direct.mp4"
        argv = build_command("video", clip, direct_output, OPTIONS, ffmpeg=ffmpeg)

        print(f"ffmpeg: {ffmpeg}")
        print(f"clip:   1920x1080 30 fps, {args.seconds:g} s (made in {made_in:.2f} s)")
        print(
            f"task:   video {OPTIONS}, preset {DEFAULT_PRESET}, {args.runs} runs each, interleaved"
        )
        print(f"argv:   {' '.join(argv[1:])}")

        engine_times: list[float] = []
        direct_times: list[float] = []
        engine_size = direct_size = 0
        for run in range(args.runs):
            # Alternate who goes first so that warm caches favour neither side.
            order = ("engine", "direct") if run % 2 == 0 else ("direct", "engine")
            for which in order:
                if which == "engine":
                    elapsed, engine_size = timed(lambda: run_engine(clip, root / "engine"))
                    engine_times.append(elapsed)
                else:
                    elapsed, direct_size = timed(lambda: run_direct(argv, direct_output))
                    direct_times.append(elapsed)
                print(f"  run {run + 1} {which:<6} {elapsed:6.2f} s", flush=True)

        print()
        print(f"{'':<8}{'median':>10}  {'min-max':>14}  {'speed':>7}  {'output':>14}")
        print(summary("engine", engine_times, engine_size, args.seconds))
        print(summary("direct", direct_times, direct_size, args.seconds))
        ratio = statistics.median(engine_times) / statistics.median(direct_times)
        overhead = statistics.median(engine_times) - statistics.median(direct_times)
        print(f"ratio engine/direct (medians): {ratio:.3f}  ({overhead * 1000:+.0f} ms per run)")
        if engine_size != direct_size:
            print(f"note: output sizes differ by {abs(engine_size - direct_size)} bytes")


if __name__ == "__main__":
    main()
