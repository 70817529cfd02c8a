"""The built sdist and wheel carry what an installed app needs."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.mark.once
def test_wheel_holds_migrations_templates_and_py_typed(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tapestry_media/py.typed" in names
    assert "tapestry_media/migrations/0001_initial.py" in names
    assert "tapestry_media/migrations/__init__.py" in names
    assert any(n.startswith("tapestry_media/local/engine/") for n in names)
    assert not any(n.startswith("tests/") or n.startswith("example_project/") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: Django>=5.2" in text
    assert "Requires-Dist: djangorestframework" in text
    assert "Requires-Dist: django-environ" in text
    assert 'Requires-Dist: django-tasks>=0.8; python_version < "3.12"' in text
    assert "Provides-Extra: local" in text
    # The README's install line brings a job backend with its worker command, and FFmpeg.
    assert 'Requires-Dist: django-tasks-db>=0.12; extra == "local"' in text
    assert 'Requires-Dist: imageio-ffmpeg>=0.5; extra == "local"' in text
    assert 'Requires-Dist: django-tasks-db>=0.12; extra == "worker"' in text


@pytest.mark.once
def test_sdist_holds_the_license_and_templates(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(n.endswith("/LICENSE") for n in names)
    assert any(n.endswith("/CHANGELOG.md") for n in names)
    assert any(n.endswith("/docs/api.md") for n in names)
    assert any(n.endswith("tapestry_media/py.typed") for n in names)
    assert any("tapestry_media/migrations/0001_initial.py" in n for n in names)


@pytest.mark.once
def test_twine_accepts_both(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    assert len(files) == 2
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2
