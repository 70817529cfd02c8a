"""The README's "Install it in your site", followed to the letter in a fresh project.

The wheel is built (what ``make build`` does), a new virtualenv is made, and from then on only
the README's marked blocks run, word for word: the pip line, ``startproject``, the settings and
urls appended as they stand, migrate and check, the worker, one upload. The test adds no line
of its own; it only supplies the reader's video and reads what ``status`` prints. pip may reach
PyPI for the dependencies (its cache makes that quick after the first run).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.media import make_clip

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(
    r"<!-- install:(?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)```\n"
    r"<!-- /install:(?P=name) -->",
    re.DOTALL,
)


def readme_blocks() -> dict[str, str]:
    return {m["name"]: m["body"] for m in BLOCK.finditer((ROOT / "README.md").read_text())}


def test_the_readme_marks_every_install_block_once() -> None:
    text = (ROOT / "README.md").read_text()
    names = [m["name"] for m in BLOCK.finditer(text)]
    assert names == ["pip", "project", "settings", "urls", "migrate", "worker", "try"]
    assert text.count("<!-- install:") == len(names)  # no block the pattern misses


def reader_env(venv: Path) -> dict[str, str]:
    """The reader's shell: their virtualenv active, none of this repository's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAPESTRY_MEDIA_", "DJANGO_", "PYTEST_", "VIRTUAL_ENV", "PYTHON"))
        and k not in {"DATABASE_URL", "SQLITE_TEST_NAME"}
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def sh(script: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout + result.stderr


def wait_until_ready(
    block: str, project: Path, env: dict[str, str], worker: subprocess.Popen[bytes], log: Path
) -> str:
    """Run the block, then its last line (``status``) again, as the README says, until ready."""
    shown = sh(block, cwd=project, env=env)
    status_line = block.strip().splitlines()[-1]
    deadline = time.monotonic() + 90
    while "submissions: ready 1" not in shown and time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text()
        time.sleep(1)
        shown = subprocess.run(
            ["bash", "-c", status_line], cwd=project, env=env, capture_output=True, text=True
        ).stdout
    return shown


@pytest.mark.once
def test_install_it_in_your_site_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks()
    started = time.monotonic()
    # What `make build` does (its own twine check is tests/test_packaging.py's).
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = reader_env(venv)

    built = time.monotonic()
    sh(blocks["pip"], cwd=tmp_path, env=env)  # from the directory holding dist/
    installed = time.monotonic()
    sh(blocks["project"], cwd=tmp_path, env=env)
    project = tmp_path / "mysite"
    for name, target in (("settings", "settings.py"), ("urls", "urls.py")):
        with open(project / "mysite" / target, "a") as fh:
            fh.write("\n" + blocks[name])
    checked = sh(blocks["migrate"], cwd=project, env=env)
    assert "System check identified no issues" in checked

    make_clip(project / "clip.mp4", seconds=2)  # the reader's own video
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(
            ["bash", "-c", blocks["worker"]],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # db_worker may fork an autoreloader: stop the whole group
        )
        try:
            shown = wait_until_ready(blocks["try"], project, env, worker, tmp_path / "worker.log")
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
    assert "submissions: ready 1" in shown, shown + (tmp_path / "worker.log").read_text()
    assert "tasks: succeeded 2" in shown  # the default pipeline: the video and its poster
    outputs = list((project / "media").rglob("*.mp4")) + list((project / "media").rglob("*.jpg"))
    assert len(outputs) >= 3  # the upload, the transcoded video, the poster
    print(
        f"install test: build + venv {built - started:.1f} s, pip {installed - built:.1f} s, "
        f"project to ready {time.monotonic() - installed:.1f} s"
    )
