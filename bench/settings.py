"""The benchmark site: the example project's settings, plus the peers of the webhook benchmark
(bench/urls.py, bench/views.py) and their own tables (bench/minimal), persistent database
connections and quiet logs. Every value still comes from the environment, set
by ``bench/harness.py``: ``DATABASE_URL`` (PostgreSQL, database ``tapestry_bench``),
``ITTYBIT_WEBHOOK_SECRET``, ``MEDIA_ROOT``, ``TAPESTRY_MEDIA_BACKEND``, ``ITTYBIT_API_URL``…"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT / "example_project") not in sys.path:
    sys.path.insert(0, str(_ROOT / "example_project"))
os.environ.setdefault("LOG_LEVEL", "ERROR")

from example.settings import *  # noqa: E402, F403
from example.settings import DATABASES, INSTALLED_APPS, LOGGING  # noqa: E402

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [*INSTALLED_APPS, "bench.minimal"]
# What a production site does (persistent connections); every view of the benchmark shares it.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "600"))
# ``off`` for a run whose figures should not hang on the machine's fsync latency (bench.peers
# --synchronous-commit): commits then return before their WAL is on disk.
if os.environ.get("BENCH_SYNCHRONOUS_COMMIT"):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"-c synchronous_commit={os.environ['BENCH_SYNCHRONOUS_COMMIT']}"
LOGGING["loggers"]["django"] = {"handlers": ["console"], "level": "ERROR"}

# Extra TAPESTRY_MEDIA keys for a benchmark (timeouts, backoff), as JSON.
if os.environ.get("BENCH_TAPESTRY_MEDIA"):
    import json

    from example.settings import TAPESTRY_MEDIA

    TAPESTRY_MEDIA.update(json.loads(os.environ["BENCH_TAPESTRY_MEDIA"]))
