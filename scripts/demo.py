"""Run the example site on the local engine: migrate, a demo login, a worker, the site, and one
generated sample video processed end to end. Ctrl-C stops everything this started.

    scripts/demo.sh [--port 8000] [--no-sample] [--exit-when-ready]     (or PORT=8001 make demo)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--no-sample", action="store_true", help="do not upload a sample video")
    parser.add_argument(
        "--exit-when-ready", action="store_true", help="stop once the sample is processed"
    )
    args = parser.parse_args()
    if not port_is_free(args.port):
        print(
            f"port {args.port} is already in use (another program answers at "
            f"http://127.0.0.1:{args.port}/). Stop it, or pick another port: "
            f"PORT={args.port + 1} make demo",
            file=sys.stderr,
        )
        return 2

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example.settings", "PYTHONUNBUFFERED": "1"}
    env.setdefault("TAPESTRY_MEDIA_BACKEND", "local")
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env)
    shell(manage, env, CREATE_USER)

    children = [
        subprocess.Popen([*manage, "db_worker", "--interval", "0.5", "--no-reload"], env=env),
        subprocess.Popen([*manage, "runserver", f"127.0.0.1:{args.port}", "--noreload"], env=env),
    ]

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                # SIGTERM, not SIGINT: a child started from a background job ignores SIGINT.
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    site = f"http://127.0.0.1:{args.port}"
    print(f"\n  Site:   {site}/   (login: {DEMO_USER} / {DEMO_PASSWORD})")
    print(f"  Admin:  {site}/admin/\n  Ctrl-C stops the site and the worker.\n")
    try:
        if not args.no_sample:
            upload_sample(manage, env, site)
            if args.exit_when_ready:
                return 0
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a demo process stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


def port_is_free(port: int) -> bool:
    """Whether runserver could listen on 127.0.0.1:``port`` (it would fail only later)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def upload_sample(manage: list[str], env: dict[str, str], site: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "sample.mp4"
        make_clip(clip)
        public_id = shell(manage, env, UPLOAD.format(path=str(clip), user=DEMO_USER))
    print(f"  Sample upload {public_id}: processing on the local engine…")
    deadline = time.monotonic() + 300
    status = "pending"
    while time.monotonic() < deadline:
        status = shell(manage, env, STATUS.format(public_id=public_id))
        if status in ("ready", "partial", "failed"):
            break
        time.sleep(1)
    print(f"  Sample {public_id} is {status}: {site}/submissions/{public_id}/")
    print(f"  In admin: {site}/admin/tapestry_media/submission/?q={public_id}\n")
    if status != "ready":
        raise SystemExit(f"the sample upload ended {status!r}; see the worker's log above")


def shell(manage: list[str], env: dict[str, str], code: str) -> str:
    """Run ``code`` in ``manage.py shell``; the last line it printed."""
    result = subprocess.run(
        [*manage, "shell", "-v", "0", "-c", code],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def make_clip(path: Path) -> None:
    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip


CREATE_USER = f"""
from django.contrib.auth import get_user_model
User = get_user_model()
user, _ = User.objects.get_or_create(username={DEMO_USER!r}, defaults={{"is_staff": True,
    "is_superuser": True, "email": "demo@example.com"}})
user.set_password({DEMO_PASSWORD!r}); user.save()
"""

UPLOAD = """
from django.contrib.auth import get_user_model
from django.core.files import File
from tapestry_media.models import Submission
with open({path!r}, "rb") as fh:
    sub = Submission.objects.create(
        uploader=get_user_model().objects.get(username={user!r}),
        title="Sample: lavfi test pattern", campaign="summer-launch", source="demo",
        file=File(fh, name="sample.mp4"),
    )
print(sub.public_id)
"""

STATUS = """
from tapestry_media.models import Submission
print(Submission.objects.get(public_id={public_id!r}).status)
"""

if __name__ == "__main__":
    sys.exit(main())
