"""Settings of the queue benchmark (bench/queues.py): the queue leg's settings (one ``TASKS``
alias per real queue backend) on the bench database ``DATABASE_URL`` (set by bench/queues.py),
``TAPESTRY_MEDIA`` from ``BENCH_TAPESTRY_MEDIA`` (JSON), quiet logs."""

from __future__ import annotations

import json
import os

from tests.queue_settings import *  # noqa: F403

TAPESTRY_MEDIA = json.loads(os.environ.get("BENCH_TAPESTRY_MEDIA") or "{}") or TAPESTRY_MEDIA  # noqa: F405
MEDIA_ROOT = os.environ.get("BENCH_MEDIA_ROOT", "/tmp/tapestry-bench-media")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
