"""The embedded local engine as a backend: a small "remote service" on this machine.

``create`` records a :class:`~tapestry_media.models.LocalJob` (idempotent on the key, like the
API) and enqueues a job that runs FFmpeg; results come back as signed webhook events. The job
table is the service's own state, so ``get`` answers for resync, and a job whose worker died
(its lease expired) is run again.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import ClassVar
from urllib.parse import urlsplit

from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import default_storage
from django.db import IntegrityError, router, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ..backends.base import BaseBackend, PermanentBackendError, TaskSpec, WebhookKey
from ..conf import Settings
from ..enqueue import enqueue
from ..models import LocalJob
from ..remote import RemoteTask, parse_task
from . import engine
from .delivery import REMOTE_ID_PREFIX, derived_secret, task_object
from .jobs import run_local_job


class LocalBackend(BaseBackend):
    name = "local"
    supports_get = True
    delivers_results = True
    accepts_storage_input = True

    kinds: ClassVar[tuple[str, ...]] = tuple(engine.SUPPORTED_KINDS)

    @classmethod
    @sensitive_variables("config")
    def webhook_keys(cls, config: Settings) -> list[WebhookKey]:
        """The key derived from ``SECRET_KEY``, only while no ``WEBHOOK_SECRETS`` are set (the
        engine then signs with those), and only for local tasks."""
        if config.WEBHOOK_SECRETS:
            return []
        return [WebhookKey(derived_secret(), scope=cls.name)]

    def create(self, spec: TaskSpec, *, idempotency_key: str) -> RemoteTask:
        existing = LocalJob.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return self._as_remote(existing)
        self._validate(spec)
        job = LocalJob(
            remote_id=f"{REMOTE_ID_PREFIX}{secrets.token_hex(10)}",
            idempotency_key=idempotency_key,
            kind=spec.kind,
            input=spec.input,
            options=spec.options,
            metadata=spec.metadata,
            webhook_url=spec.webhook_url,
        )
        try:
            with transaction.atomic(using=router.db_for_write(LocalJob)):
                job.save()
        except IntegrityError:  # the same key, created concurrently: replay it
            return self._as_remote(LocalJob.objects.get(idempotency_key=idempotency_key))
        enqueue_run(job.pk)
        return self._as_remote(job)

    def get(self, remote_id: str) -> RemoteTask:
        job = LocalJob.objects.filter(remote_id=remote_id).first()
        if job is None:
            raise PermanentBackendError(
                f"the local engine has no task {remote_id!r}", kind="not_found", status_code=404
            )
        if is_abandoned(job, self.config.LOCAL_LEASE_SECONDS):
            enqueue_run(job.pk)
        return self._as_remote(job)

    def _validate(self, spec: TaskSpec) -> None:
        try:
            engine.validate_options(spec.kind, spec.options)
        except engine.UnsupportedOperation as exc:
            raise PermanentBackendError(str(exc), kind="unsupported") from exc
        scheme = urlsplit(spec.input).scheme.lower()
        if scheme:
            if scheme not in {s.lower() for s in self.config.LOCAL_ALLOWED_SCHEMES}:
                raise PermanentBackendError(
                    f"the local engine does not fetch {scheme}: URLs", kind="input_refused"
                )
        elif not _stored(spec.input):
            raise PermanentBackendError(
                f"the input {spec.input!r} is not in the default storage", kind="input_missing"
            )

    @staticmethod
    def _as_remote(job: LocalJob) -> RemoteTask:
        return parse_task(task_object(job))


def _stored(name: str) -> bool:
    """Whether the default storage holds ``name``: one ``exists()``, a HEAD request on S3.
    Raises ``input_refused`` for a name outside the storage: absolute or with ``..`` (before
    any storage sees it), or one the storage refuses (``SuspiciousOperation``)."""
    parts = name.replace("\\", "/").split("/")
    if not (name.startswith(("/", "\\")) or "\0" in name or ".." in parts):
        try:
            return default_storage.exists(name)
        except SuspiciousOperation:
            pass
    raise PermanentBackendError(
        f"the input {name!r} is not a name inside the default storage", kind="input_refused"
    )


def is_abandoned(job: LocalJob, lease_seconds: int) -> bool:
    """Pending with no run for a lease period, or processing with an expired lease."""
    now = timezone.now()
    if job.state == LocalJob.State.PROCESSING:
        return job.lease_expires_at is None or job.lease_expires_at < now
    if job.state == LocalJob.State.PENDING:
        return job.updated_at < now - timedelta(seconds=lease_seconds)
    return False


def enqueue_run(job_pk: int) -> None:
    transaction.on_commit(
        lambda: enqueue(run_local_job, job_pk), using=router.db_for_write(LocalJob)
    )
