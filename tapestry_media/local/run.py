"""Running one local-engine job in a worker: claim it with a lease, get the input, run FFmpeg
with progress, store the output, report each step as a signed event.

A worker that dies mid-job leaves the job ``processing`` with a lease that runs out; ``get``
(called by resync) then enqueues it again and the next run claims it. The lease is extended
whenever ffmpeg reports progress. Only one run finishes a job: the finishing UPDATE requires
the job to still be ``processing``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..conf import Settings, get_settings
from ..models import LocalJob
from . import engine
from .delivery import report
from .engine.paths import without_paths
from .fetch import FetchRefused, fetch

logger = logging.getLogger("tapestry_media.local")

PROGRESS_EVERY_SECONDS = 1.0
PROGRESS_EVERY_PERCENT = 5


def run(job_pk: int) -> str:
    config = get_settings()
    job = claim(job_pk, config.LOCAL_LEASE_SECONDS)
    if job is None:
        return "skipped"
    report(job, "task.updated")
    try:
        with tempfile.TemporaryDirectory(prefix="tapestry-local-") as workdir:
            with local_input(job.input, workdir, config) as source:
                result = engine.run_operation(
                    job.kind,
                    source,
                    os.path.join(workdir, "out"),
                    job.options,
                    basename=_basename(job.input),
                    input_name=_input_name(job.input),
                    ffmpeg=config.FFMPEG_BINARY or None,
                    progress=ProgressReporter(job, config.LOCAL_LEASE_SECONDS),
                    timeout=config.LOCAL_TIMEOUT,
                )
            output = store(job, result, config)
    except (engine.EngineError, FetchRefused, OSError, SuspiciousOperation) as exc:
        return fail(job, _error(exc, job.input))
    except Exception as exc:  # a bug: fail the job rather than leave it leased for resync
        logger.exception("local job %s crashed", job.remote_id)
        return fail(job, _unexpected(exc))
    if not finish(job, LocalJob.State.SUCCEEDED, output=output):
        default_storage.delete(output["storage_name"])  # another run finished first
        return "skipped"
    report(job, "task.succeeded")
    return "succeeded"


def fail(job: LocalJob, error: dict[str, str]) -> str:
    if finish(job, LocalJob.State.FAILED, error=error):
        report(job, "task.failed")
    return "failed"


def claim(job_pk: int, lease_seconds: int) -> LocalJob | None:
    now = timezone.now()
    runnable = Q(state=LocalJob.State.PENDING) | Q(
        state=LocalJob.State.PROCESSING, lease_expires_at__lt=now
    )
    won = LocalJob.objects.filter(runnable, pk=job_pk).update(
        state=LocalJob.State.PROCESSING,
        runs=F("runs") + 1,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        started_at=Coalesce("started_at", now),
        progress=0,
        updated_at=now,
    )
    return LocalJob.objects.get(pk=job_pk) if won else None


def finish(job: LocalJob, state: str, **fields: Any) -> bool:
    now = timezone.now()
    done = LocalJob.objects.filter(pk=job.pk, state=LocalJob.State.PROCESSING).update(
        state=state,
        finished_at=now,
        updated_at=now,
        lease_expires_at=None,
        progress=100 if state == LocalJob.State.SUCCEEDED else job.progress,
        **fields,
    )
    if done:
        job.refresh_from_db()
    return bool(done)


class ProgressReporter:
    """ffmpeg's progress → the job row (extending the lease) and a ``task.updated`` event,
    at most once a second and once per 5 %."""

    def __init__(self, job: LocalJob, lease_seconds: int) -> None:
        self.job = job
        self.lease = timedelta(seconds=lease_seconds)
        self.sent_at = 0.0
        self.sent = 0

    def __call__(self, percent: float) -> None:
        value = int(percent)
        now = time.monotonic()
        if value >= 100 or value - self.sent < PROGRESS_EVERY_PERCENT:
            return
        if now - self.sent_at < PROGRESS_EVERY_SECONDS:
            return
        self.sent, self.sent_at = value, now
        moment = timezone.now()
        LocalJob.objects.filter(pk=self.job.pk, state=LocalJob.State.PROCESSING).update(
            progress=value, lease_expires_at=moment + self.lease, updated_at=moment
        )
        self.job.progress = value
        self.job.updated_at = moment
        report(self.job, "task.updated")


@contextlib.contextmanager
def local_input(value: str, workdir: str, config: Settings) -> Iterator[str]:
    """A local path for the input: the storage's own path when it has one, else a copy; a URL
    is fetched under the SSRF policy."""
    if urlsplit(value).scheme:
        target = os.path.join(workdir, "input" + _suffix(urlsplit(value).path))
        with open(target, "wb") as handle:
            fetch(value, handle, config=config)
        yield target
        return
    try:
        path = default_storage.path(value)  # SuspiciousOperation for a name outside storage
    except NotImplementedError:  # remote storage (S3…): copy it down
        yield copy_down(value, os.path.join(workdir, "input" + _suffix(value)))
        return
    if not default_storage.exists(value):
        raise FileNotFoundError(_missing(value))
    yield path


def copy_down(value: str, target: str) -> str:
    """Copy the stored ``value`` to the local ``target``. No ``exists()`` first: opening a
    missing file fails (on S3 the HEAD django-storages makes when it opens one, a second
    request for what ``exists()`` would ask), and only a failure asks the storage whether the
    file is there, to say so as ``FileNotFoundError``."""
    with open(target, "wb") as handle:
        try:
            with default_storage.open(value, "rb") as source:
                for chunk in iter(lambda: source.read(1024 * 1024), b""):
                    handle.write(chunk)
        except FileNotFoundError as exc:
            raise FileNotFoundError(_missing(value)) from exc
        except SuspiciousOperation:
            raise
        except Exception as exc:  # a storage that raises its own error for a missing file
            if not default_storage.exists(value):
                raise FileNotFoundError(_missing(value)) from exc
            raise
    return target


def _missing(value: str) -> str:
    return f"the input {value!r} is not in the default storage"


def store(job: LocalJob, result: engine.EngineResult, config: Settings) -> dict[str, Any]:
    name = f"{config.LOCAL_OUTPUT_PREFIX}/{job.remote_id}/{os.path.basename(result.path)}"
    with open(result.path, "rb") as handle:
        saved = default_storage.save(name, File(handle))
    return {
        **_lasting_url(saved, config),
        "storage_name": saved,
        "kind": result.kind,
        "format": result.format,
        "type": result.mime_type,
        "width": result.width,
        "height": result.height,
        "duration": result.duration,
        "filesize": result.filesize,
    }


def _lasting_url(name: str, config: Settings) -> dict[str, str]:
    """``{"url": …}`` for a storage whose URLs last (a file system, a public bucket), so hosts
    and webhook receivers that read ``output_url`` get one; ``{}`` for a URL with a query
    string, which is how S3, GCS and Azure sign URLs that expire. Readers in this app ask the
    storage for a URL from ``storage_name`` whenever they show one (``api/outputs.py``)."""
    url = default_storage.url(name)
    if urlsplit(url).query:
        return {}
    if not urlsplit(url).scheme and config.PUBLIC_BASE_URL:
        url = urljoin(config.PUBLIC_BASE_URL.rstrip("/") + "/", url.lstrip("/"))
    return {"url": url}


def _basename(value: str) -> str:
    stem = os.path.splitext(os.path.basename(urlsplit(value).path))[0]
    return stem[:80] or "output"


def _suffix(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    return suffix if len(suffix) <= 6 and suffix[1:].isalnum() else ""


def _input_name(value: str) -> str:
    return os.path.basename(urlsplit(value).path) or "the input"


def _error(exc: BaseException, value: str) -> dict[str, str]:
    """``message`` for users (no server path: only the input's own name); ``detail`` for the
    admin (ffmpeg's full text)."""
    if isinstance(exc, engine.EngineError):
        message, detail = exc.reason, exc.detail
    else:
        message = detail = str(exc)
    return {"kind": _error_kind(exc), "message": without_paths(message), "detail": detail}


def _unexpected(exc: Exception) -> dict[str, str]:
    return {
        "kind": "engine_error",
        "message": f"the local engine failed unexpectedly ({type(exc).__name__})",
        "detail": "".join(traceback.format_exception(exc)),
    }


# Most specific first: InputRefused is an InputError, SuspiciousFileOperation a SuspiciousOperation.
_ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (engine.UnsupportedOperation, "unsupported"),
    (engine.InputRefused, "input_refused"),
    (engine.InputError, "input_invalid"),
    (engine.EngineTimeout, "timeout"),
    (engine.EngineUnavailable, "engine_unavailable"),
    (FetchRefused, "input_refused"),
    (SuspiciousOperation, "input_refused"),
    (FileNotFoundError, "input_missing"),
)


def _error_kind(exc: BaseException) -> str:
    return next((kind for cls, kind in _ERROR_KINDS if isinstance(exc, cls)), "engine_error")
