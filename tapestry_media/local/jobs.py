"""The local engine's background job (``django.tasks``)."""

from __future__ import annotations

from ..tasks_shim import task
from .run import run


@task()
def run_local_job(job_pk: int) -> str:
    """Run one local-engine job: lease, FFmpeg, output, signed reports (:mod:`.run`)."""
    return run(job_pk)
