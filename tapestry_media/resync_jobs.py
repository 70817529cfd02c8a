"""Deprecated: ``poll_task`` is :func:`tapestry_media.jobs.poll_task` now. This module stays
for one release so that jobs queued under ``tapestry_media.resync_jobs.poll_task`` still run."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "poll_task":
        warnings.warn(
            "tapestry_media.resync_jobs.poll_task moved to tapestry_media.jobs.poll_task",
            DeprecationWarning,
            stacklevel=2,
        )
        # Lazy, so importing this module alone imports nothing (it is looked up only by
        # a worker running a job stored under the old path).
        from .jobs import poll_task

        return poll_task
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
