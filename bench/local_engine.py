"""Local engine wall time against the identical plain ffmpeg command (reuses ``bench/engine.py``).

    python -m bench.local_engine [--seconds 10] [--runs 3]

Three ways to turn the same 1080p clip into the default 1280-wide mp4, interleaved:

* ``direct`` — the engine's own argv (same preset, CRF, filters), run with ``subprocess``;
* ``engine`` — ``run_operation`` (probe input and output, progress parsing, timeout);
* ``job``    — a whole local-backend job, ``local_run.run``: claim with a lease, the engine,
  the output saved to storage, and its ``task.updated``/``task.succeeded`` events signed and
  delivered through the webhook path to a real Task row.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from . import harness
from .engine import OPTIONS, make_clip, run_direct, run_engine


def run(*, seconds: float = 10.0, runs: int = 3, say: Any = print) -> dict[str, Any]:
    from django.core.files.storage import default_storage
    from django.test import override_settings

    import tapestry_media
    from tapestry_media.local import run as local_run
    from tapestry_media.local.engine import build_command, find_ffmpeg
    from tapestry_media.models import LocalJob, Task

    harness.reset_tables()
    ffmpeg = find_ffmpeg()
    times: dict[str, list[float]] = {"direct": [], "engine": [], "job": []}
    config = {"BACKEND": "local", "WEBHOOK_SECRETS": [harness.SECRET]}
    with (
        tempfile.TemporaryDirectory(prefix="bench-local-") as tmp,
        override_settings(TAPESTRY_MEDIA=config),
    ):
        root = Path(tmp)
        clip = root / "clip1080p.mp4"
        make_clip(ffmpeg, clip, seconds)
        with clip.open("rb") as handle:
            stored = default_storage.save("bench/clip1080p.mp4", handle)
        direct_output = root / "direct.mp4"
        argv = build_command("video", clip, direct_output, OPTIONS, ffmpeg=ffmpeg)

        def job() -> int:
            task = tapestry_media.submit(input=stored, kind="video", options=dict(OPTIONS))
            from tapestry_media.submit_step import run_submit

            run_submit(task.pk)  # LocalBackend.create: the LocalJob (its run job is not used)
            job = LocalJob.objects.get(remote_id=Task.objects.get(pk=task.pk).remote_id)
            assert local_run.run(job.pk) == "succeeded"
            task.refresh_from_db()
            assert task.status == "succeeded", task.status
            return int(task.output["filesize"])

        actions = {
            "direct": lambda: run_direct(argv, direct_output),
            "engine": lambda: run_engine(clip, root / "engine"),
            "job": job,
        }
        sizes: dict[str, int] = {}
        for run_index in range(runs):
            order = list(actions) if run_index % 2 == 0 else list(reversed(actions))
            for name in order:
                started = time.perf_counter()
                sizes[name] = actions[name]()
                times[name].append(time.perf_counter() - started)
                say(f"  local engine run {run_index + 1} {name:<6} {times[name][-1]:6.2f} s")
        shutil.rmtree(Path(harness.MEDIA_ROOT) / "tapestry_media", ignore_errors=True)
    direct = statistics.median(times["direct"])
    return {
        "seconds": seconds,
        "times": times,
        "sizes": sizes,
        "engine_ratio": statistics.median(times["engine"]) / direct,
        "job_ratio": statistics.median(times["job"]) / direct,
        "argv": " ".join(argv[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    harness.prepare()
    result = run(seconds=args.seconds, runs=args.runs)
    for name, values in result["times"].items():
        print(f"{name:<7} {harness.spread(values, '{:.2f}')} s")
    print(
        f"engine/direct {result['engine_ratio']:.3f}, job/direct {result['job_ratio']:.3f}; "
        f"output sizes {result['sizes']}"
    )


if __name__ == "__main__":
    main()
