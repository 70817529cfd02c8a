"""Schemathesis against the example project: the OpenAPI document is true of the live API.

A throwaway database and media root, the example site on an ephemeral port (settings in
tests/schemathesis_site.py), a non-staff user with uploads over HTTP Basic, a fixed seed and a
bounded number of cases; checks as tests/schemathesis.toml names them. Fails on any
schemathesis failure and when fewer than a third of the requests reached a 2xx.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from .helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "example_project" / "manage.py")]
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
SEED, CASES_PER_OPERATION = 20261201, 30
USER, PASSWORD = "fuzz", "fuzz-password"

pytestmark = pytest.mark.once


@pytest.fixture
def site(tmp_path: Path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.schemathesis_site",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    seed = f"from tests.schemathesis_site import seed; seed({USER!r}, {PASSWORD!r})"
    subprocess.run([*MANAGE, "shell", "-v", "0", "-c", seed], env=env, check=True)
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/tapestry/api/schema/", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_schemathesis_finds_no_failure(site: str, tmp_path: Path) -> None:
    har = tmp_path / "run.har"
    result = subprocess.run(
        [
            *SCHEMATHESIS, "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "--no-color",
            "run", f"{site}/tapestry/api/schema/", "--auth", f"{USER}:{PASSWORD}",
            "--seed", str(SEED), "--max-examples", str(CASES_PER_OPERATION), "--workers", "1",
            "--generation-database", "none", "--report", "har", "--report-har-path", str(har),
        ],
        cwd=tmp_path,  # its cache directory goes there, not into the work tree
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    statuses = Counter(
        entry["response"]["status"] // 100
        for entry in json.loads(har.read_text())["log"]["entries"]
    )
    total = sum(statuses.values())
    print(f"schemathesis: {total} requests, {statuses[2]} 2xx ({statuses[2] / total:.0%})")
    assert total >= 300, statuses
    assert statuses[2] * 3 >= total, statuses
    assert statuses[5] == 0, statuses
