"""Webhook deliveries: store each one and apply it; results for unknown tasks wait for them.

One delivery, after the view has checked its size and signature (dj-stripe's order):

1. :func:`parse_body` — JSON → :class:`~tapestry_media.remote.RemoteEvent`.
2. :func:`reconcile.apply` with a new :class:`WebhookEvent` (:func:`new_event`): in one
   transaction the task is locked, the event inserted (matched and marked processed) and the
   task changed; both commit together. A repeat of a known event (its :func:`dedup_key` is
   taken) only bumps ``delivery_count`` and ``last_received_at`` (:func:`count_repeat`).
3. If applying raises, the transaction rolls back, :func:`store_failure` keeps the event with
   the error and :class:`ProcessingError` is raised; a repeat delivery of that event, or
   :func:`reprocess`, applies it again.

:func:`deliver` runs these steps; the local engine calls it too (``source="local"``), and a
polled state is stored the same way (:func:`record_poll`). A result that matches no task is
stored unmatched and applied by :func:`apply_unmatched` when the submit job learns the task's
remote id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.db import IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from . import reconcile
from .models import Task, WebhookEvent
from .remote import PayloadError, RemoteEvent, RemoteTask, loads, parse_event

logger = logging.getLogger("tapestry_media.webhooks")

#: Request headers stored with an event (lower case). Signatures are left out: they prove
#: nothing once stored, and the body is kept anyway.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-request-id",
)
_MAX_KEY = WebhookEvent._meta.get_field("dedup_key").max_length or 200
_MAX_ERROR = 2000
_SCOPED = "scope:"


class ProcessingError(Exception):
    """Applying a stored delivery failed. The reason is on the event row; a repeat delivery of
    the same event is processed again."""

    def __init__(self, event_pk: int, message: str) -> None:
        super().__init__(message)
        self.event_pk = event_pk


@dataclass(frozen=True)
class Receipt:
    """What :func:`deliver` did. ``outcome`` is ``None`` for a repeat that was only counted."""

    event_pk: int | None
    duplicate: bool
    outcome: reconcile.Outcome | None

    @property
    def status(self) -> str:
        """``duplicate``, ``unmatched``, ``applied`` or why nothing changed (``stale``,
        ``old_attempt``, ``superseded``, ``remote_id_mismatch``, ``unknown_status``)."""
        if self.outcome is None:
            return "duplicate"
        return self.outcome.reason


def deliver(
    body: bytes,
    *,
    source: str = WebhookEvent.Source.WEBHOOK,
    headers: Mapping[str, str] | None = None,
    scheme: str = "",
    scope: str | None = None,
) -> Receipt:
    """Record and apply one (already verified) delivery, in one transaction. A delivery
    verified by a key with a ``scope`` (a backend name) may change only tasks of that backend,
    and its dedup key is its own (:func:`dedup_key`).

    Raises :class:`~tapestry_media.remote.PayloadError` for a body that is not a task or an
    event holding one (nothing is written) and :class:`ProcessingError` when applying failed
    (the event is then stored with the error, unprocessed).
    """
    event = parse_body(body)
    row = new_event(event, body, source=source, headers=headers or {}, scheme=scheme, scope=scope)
    return _record(event.task, row, source=source, scope=scope)


def record_poll(remote: RemoteTask, *, task_pk: int) -> reconcile.Outcome:
    """Store a polled state as an event (source ``poll``) and apply it to task ``task_pk``,
    as a delivery of that state would be. A state polled before is only counted."""
    body = json.dumps(remote.raw or {"id": remote.id, "status": remote.raw_status}).encode()
    event = RemoteEvent(id=None, topic=f"task.{remote.raw_status}", task=remote)
    row = new_event(event, body, source=WebhookEvent.Source.POLL, headers={}, scheme="")
    receipt = _record(remote, row, source=WebhookEvent.Source.POLL, scope=None, task_pk=task_pk)
    return receipt.outcome or reconcile.Outcome(None, False, "duplicate")


def _record(
    remote: RemoteTask,
    row: WebhookEvent,
    *,
    source: str,
    scope: str | None,
    task_pk: int | None = None,
) -> Receipt:
    try:
        outcome = reconcile.apply(remote, source=source, event=row, scope=scope, task_pk=task_pk)
    except IntegrityError:
        # Usually a repeat: its dedup key is taken. If no event has that key, some other
        # constraint refused the row, and that is no repeat.
        repeat = count_repeat(row.dedup_key)
        if repeat is None:
            raise
        return _repeat(remote, repeat, source=source, scope=scope, task_pk=task_pk)
    except Exception as exc:
        logger.exception("could not apply webhook for %s", remote.id)
        message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        raise ProcessingError(store_failure(row, message), message) from exc
    if not outcome.matched:
        logger.info("webhook for unknown task %s stored unmatched (event %s)", remote.id, row.pk)
    return Receipt(row.pk, False, outcome)


def _repeat(
    remote: RemoteTask, repeat: int, *, source: str, scope: str | None, task_pk: int | None
) -> Receipt:
    """A known event again (see :func:`count_repeat`): counted, unless its first delivery
    failed; then it is applied again now."""
    if repeat == COUNTED:
        return Receipt(None, True, None)
    stored = WebhookEvent.objects.using(_alias()).get(pk=repeat)
    try:
        outcome = reconcile.apply(remote, source=source, event=stored, scope=scope, task_pk=task_pk)
    except Exception as exc:
        logger.exception("could not apply webhook event %s for %s", repeat, remote.id)
        raise ProcessingError(repeat, _store_error(repeat, exc)) from exc
    return Receipt(repeat, False, outcome)


def parse_body(body: bytes) -> RemoteEvent:
    return parse_event(loads(body))


def dedup_key(event: RemoteEvent, body: bytes, scope: str | None = None) -> str:
    """The event id when the body is an event envelope; otherwise a digest of the remote task
    id, its raw status and the exact body (a retried delivery repeats all three). A scoped
    delivery's key is ``scope:<scope>|sha256:…`` of that, so it never takes the slot of an
    unscoped event (whose keys never start with ``scope:``)."""
    if scope is not None:
        unscoped = hashlib.sha256(dedup_key(event, body).encode()).hexdigest()
        return f"{_SCOPED}{scope}|sha256:{unscoped}"
    if event.id:
        key = f"event:{event.id}"
        if len(key) <= _MAX_KEY:
            return key
        return "event-sha256:" + hashlib.sha256(event.id.encode()).hexdigest()
    digest = hashlib.sha256()
    for part in (event.task.id.encode(), event.task.raw_status.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return f"sha256:{digest.hexdigest()}"


def scope_of(key: str) -> str | None:
    """The scope a stored event's dedup key carries (``None``: unscoped)."""
    if not key.startswith(_SCOPED):
        return None
    return key.removeprefix(_SCOPED).partition("|")[0]


def new_event(
    event: RemoteEvent,
    body: bytes,
    *,
    source: str,
    headers: Mapping[str, str],
    scheme: str,
    scope: str | None = None,
) -> WebhookEvent:
    """An unsaved :class:`WebhookEvent` for ``event``: :func:`reconcile.apply` inserts it."""
    now = timezone.now()
    return WebhookEvent(
        dedup_key=dedup_key(event, body, scope),
        event_id=(event.id or "")[:200],
        topic=event.topic[:60],
        source=source,
        remote_task_id=event.task.id[:128],
        raw_status=event.task.raw_status[:40],
        body=body.decode("utf-8"),
        headers=kept_headers(headers),
        signature_scheme=scheme,
        first_received_at=now,
        last_received_at=now,
    )


#: :func:`count_repeat`'s answer for a repeat that was only counted.
COUNTED = 0


def count_repeat(key: str) -> int | None:
    """Bump the delivery count of event ``key``: one UPDATE for the usual repeat, answered
    :data:`COUNTED`. A repeat of a failed event also clears its error, and its pk is returned
    so it is processed again. ``None``: no event has that key."""
    bump = {"delivery_count": F("delivery_count") + 1, "last_received_at": timezone.now()}
    rows = WebhookEvent.objects.using(_alias()).filter(dedup_key=key)
    if rows.filter(error="").update(**bump):
        return COUNTED
    # Only one concurrent repeat wins the failed row (the filter on error re-checks it).
    if rows.exclude(error="").update(**bump, error=""):
        pk: int = rows.values_list("pk", flat=True).get()
        logger.info("re-processing webhook event %s after an earlier failure", pk)
        return pk
    return None


def store_failure(row: WebhookEvent, message: str) -> int:
    """After a delivery's transaction rolled back: keep its event, unprocessed and unmatched,
    with the error, so that a repeat delivery processes it again. Returns the event's pk."""
    alias = _alias()
    failed = WebhookEvent(
        **{f.attname: getattr(row, f.attname) for f in WebhookEvent._meta.concrete_fields},
    )
    # The rolled-back insert may have left its pk and match on the instance.
    failed.pk, failed.task_id, failed.processed_at, failed.error = None, None, None, message
    try:
        with _savepoint_if_in_transaction(alias):
            failed.save(force_insert=True, using=alias)
        return failed.pk
    except IntegrityError:
        pass
    # The event existed: a failed event failed again (its bump was rolled back with the rest),
    # or a concurrent delivery of it stored it meanwhile (then it keeps its own state).
    rows = WebhookEvent.objects.using(alias).filter(dedup_key=row.dedup_key)
    rows.update(delivery_count=F("delivery_count") + 1, last_received_at=timezone.now())
    rows.filter(processed_at__isnull=True).update(error=message)
    pk: int = rows.values_list("pk", flat=True).get()
    return pk


def _store_error(event_pk: int, exc: Exception) -> str:
    """Keep the reason a stored event could not be applied on it (unprocessed)."""
    message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
    rows = WebhookEvent.objects.using(_alias()).filter(pk=event_pk)
    rows.update(error=message, processed_at=None)
    return message


def reprocess(event: WebhookEvent, *, task_pk: int | None = None) -> reconcile.Outcome:
    """Apply a stored event's body again, as a new delivery of it would be (the admin's
    "Reprocess", and :func:`apply_unmatched`), in its own scope. Raises
    :class:`~tapestry_media.remote.PayloadError` (kept on the event) for a body that no longer
    parses and :class:`ProcessingError` when applying failed."""
    try:
        remote = parse_body(event.body.encode()).task
    except PayloadError as exc:
        WebhookEvent.objects.using(_alias()).filter(pk=event.pk).update(error=f"unparseable: {exc}")
        raise
    scope = scope_of(event.dedup_key)  # a scoped key's event stays in its scope
    try:
        outcome = reconcile.apply(
            remote, source=event.source, event=event, scope=scope, task_pk=task_pk
        )
    except Exception as exc:
        logger.exception("could not apply webhook event %s for %s", event.pk, remote.id)
        raise ProcessingError(event.pk, _store_error(event.pk, exc)) from exc
    if not outcome.matched:
        logger.info("webhook for unknown task %s stays unmatched (event %s)", remote.id, event.pk)
    return outcome


def apply_unmatched(task: Task) -> int:
    """Apply stored events for ``task.remote_id`` that matched no task when they arrived.
    Returns how many changed the task. A failure is stored on its event and skipped."""
    if not task.remote_id:
        return 0
    applied = 0
    pending = WebhookEvent.objects.using(_alias()).filter(
        remote_task_id=task.remote_id, task__isnull=True
    )
    fields = ("pk", "body", "source", "dedup_key")
    for event in pending.order_by("first_received_at", "pk").only(*fields):
        scope = scope_of(event.dedup_key)
        if scope is not None and scope != task.backend:
            continue  # vouched for by another backend's key: not for this task
        try:
            outcome = reprocess(event, task_pk=task.pk)
        except (PayloadError, ProcessingError):
            continue
        applied += int(outcome.changed)
    return applied


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name][:500] for name in KEPT_HEADERS if name in lowered}


def _alias() -> str:
    return router.db_for_write(WebhookEvent)


@contextlib.contextmanager
def _savepoint_if_in_transaction(alias: str) -> Iterator[None]:
    """A failed INSERT needs a savepoint inside a transaction; in autocommit it needs nothing
    (and ``atomic()`` would cost an extra ``BEGIN`` on SQLite)."""
    if transaction.get_connection(alias).in_atomic_block:
        with transaction.atomic(using=alias):
            yield
    else:
        yield
