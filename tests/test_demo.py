"""The README's first command really processes a sample upload on the local engine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.once
def test_demo_processes_a_sample_upload_and_stops(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--exit-when-ready",
         "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "is ready" in result.stdout
    outputs = list((tmp_path / "media" / "tapestry_media" / "outputs").rglob("*"))
    suffixes = sorted(p.suffix for p in outputs if p.is_file())
    assert suffixes == [".jpg", ".mp4"]


def test_demo_stops_at_once_when_its_port_is_taken(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--exit-when-ready"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # another program on the port (never 8000 itself)
        taken.listen()
        port = str(taken.getsockname()[1])
        started = time.monotonic()
        result = subprocess.run(
            demo, env={**env, "PORT": port}, capture_output=True, text=True, timeout=60
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} is already in use" in result.stderr
    assert f"PORT={int(port) + 1} make demo" in result.stderr
    assert "Site:" not in result.stdout  # no URL served by the other program
    assert not (tmp_path / "demo.sqlite3").exists()  # stopped before migrating
    assert elapsed < 10, elapsed
