"""Settings of the queue benchmark (bench/queues.py): the queue leg's settings (one ``TASKS``
alias per real queue backend) on the bench database ``DATABASE_URL`` (set by bench/queues.py),
``TAPESTRY_MEDIA`` from ``BENCH_TAPESTRY_MEDIA`` (JSON), quiet logs.

Workers keep their database connection (``CONN_MAX_AGE``, ``BENCH_CONN_MAX_AGE``, 600 s unless
set), as docs/deploy.md tells a site to: with Django's default of 0, ``db_worker`` (and Celery's
Django fix-up) close it after every job, and each job pays for a new one.
``BENCH_SYNCHRONOUS_COMMIT`` sets PostgreSQL's ``synchronous_commit`` for every connection."""

from __future__ import annotations

import json
import os

from tests.queue_settings import *  # noqa: F403

TAPESTRY_MEDIA = json.loads(os.environ.get("BENCH_TAPESTRY_MEDIA") or "{}") or TAPESTRY_MEDIA  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "600"))  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
if os.environ.get("BENCH_SYNCHRONOUS_COMMIT"):
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (  # noqa: F405
        f"-c synchronous_commit={os.environ['BENCH_SYNCHRONOUS_COMMIT']}"
    )
MEDIA_ROOT = os.environ.get("BENCH_MEDIA_ROOT", "/tmp/tapestry-bench-media")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
