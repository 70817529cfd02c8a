"""Webhook deliveries: store each one, then apply it; results for unknown tasks wait for them.

One delivery, after the view has checked its size and signature (dj-stripe's order):

1. :func:`parse_body` — JSON → :class:`~tapestry_media.remote.RemoteEvent`.
2. In one transaction: insert a :class:`WebhookEvent` (:func:`event_row`), matched to its task
   and marked processed, then :func:`reconcile.apply_in_transaction` on that task. The event
   and the task's change commit together. A repeat of a known event (same :func:`dedup_key`)
   only bumps ``delivery_count`` and ``last_received_at`` (:func:`count_repeat`).
3. If applying raises, the transaction rolls back and :func:`store_failure` keeps the event
   with the error and :class:`ProcessingError` is raised; a repeat delivery of that event is
   processed again.

:func:`deliver` runs these steps; the local engine calls it too (``source="local"``).
A result that matches no task is stored unmatched and applied by :func:`apply_unmatched` when
the submit job learns the task's remote id; :func:`process` applies a stored event again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import reconcile, statements
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
    row = event_row(event, body, source=source, headers=headers or {}, scheme=scheme, scope=scope)
    try:
        with transaction.atomic():
            return _deliver_in_transaction(event.task, row, source=source, scope=scope)
    except Exception as exc:
        logger.exception("could not apply webhook for %s", event.task.id)
        message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        raise ProcessingError(store_failure(row, message), message) from exc


def _deliver_in_transaction(
    remote: RemoteTask, row: dict[str, Any], *, source: str, scope: str | None
) -> Receipt:
    """Insert the event already marked processed and matched to its task, then apply it: the
    insert and the task's change commit together, or neither does. A repeat is only counted,
    unless its event failed before; then it is processed again."""
    inserted = statements.insert_event(
        row, remote_id=remote.id, correlation=reconcile.correlation_of(remote), backend=scope
    )
    if inserted is not None:
        event_pk, task_pk = inserted
        if task_pk is None:
            logger.info(
                "webhook for unknown task %s stored unmatched (event %s)", remote.id, event_pk
            )
            return Receipt(event_pk, False, reconcile.Outcome(None, False, "unmatched"))
        outcome = reconcile.apply_in_transaction(remote, source=source, task_pk=task_pk)
        return Receipt(event_pk, False, outcome)
    retried = count_repeat(row["dedup_key"])
    if retried is None:
        return Receipt(None, True, None)
    outcome = reconcile.apply_in_transaction(remote, source=source, backend=scope)
    mark_processed(retried, outcome)
    return Receipt(retried, False, outcome)


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


def event_row(
    event: RemoteEvent,
    body: bytes,
    *,
    source: str,
    headers: Mapping[str, str],
    scheme: str,
    scope: str | None = None,
) -> dict[str, Any]:
    """The columns of a new :class:`WebhookEvent` for ``event`` (processed now, no error)."""
    now = timezone.now()
    return {
        "dedup_key": dedup_key(event, body, scope),
        "event_id": (event.id or "")[:200],
        "topic": event.topic[:60],
        "source": source,
        "remote_task_id": event.task.id[:128],
        "raw_status": event.task.raw_status[:40],
        "body": body.decode("utf-8"),
        "headers": kept_headers(headers),
        "signature_scheme": scheme,
        "first_received_at": now,
        "last_received_at": now,
        "delivery_count": 1,
        "processed_at": now,
        "error": "",
    }


def count_repeat(key: str) -> int | None:
    """Bump the delivery count of event ``key``: one UPDATE for the usual repeat. A repeat of
    a failed event also clears its error, and its pk is returned so it is processed again."""
    now = timezone.now()
    if statements.count_repeat(key, now):
        return None
    bump = {"delivery_count": F("delivery_count") + 1, "last_received_at": now}
    rows = WebhookEvent.objects.filter(dedup_key=key)
    # Only one concurrent repeat wins the failed row (the filter on error re-checks it).
    if rows.exclude(error="").update(**bump, error=""):
        pk: int = rows.values_list("pk", flat=True).get()
        logger.info("re-processing webhook event %s after an earlier failure", pk)
        return pk
    rows.update(**bump)  # lost that race: someone else is re-processing it
    return None


def store_failure(row: Mapping[str, Any], message: str) -> int:
    """After a delivery's transaction rolled back: keep its event, unprocessed and unmatched,
    with the error, so that a repeat delivery processes it again. Returns the event's pk."""
    try:
        with _savepoint_if_in_transaction():
            failed = WebhookEvent.objects.create(**{**row, "processed_at": None, "error": message})
        return failed.pk
    except IntegrityError:
        pass
    # The event existed: a failed event failed again (its bump was rolled back with the rest),
    # or a concurrent delivery of it stored it meanwhile (then it keeps its own state).
    rows = WebhookEvent.objects.filter(dedup_key=row["dedup_key"])
    rows.update(delivery_count=F("delivery_count") + 1, last_received_at=timezone.now())
    rows.filter(processed_at__isnull=True).update(error=message)
    pk: int = rows.values_list("pk", flat=True).get()
    return pk


def process(
    event_pk: int,
    remote: RemoteTask,
    *,
    source: str,
    task_pk: int | None = None,
    backend: str | None = None,
) -> reconcile.Outcome:
    """Apply ``remote`` and mark event ``event_pk`` processed (with the matched task). Pass
    the event's scope (:func:`scope_of` its dedup key) as ``backend``."""
    try:
        outcome = reconcile.apply(remote, source=source, task_pk=task_pk, backend=backend)
    except Exception as exc:
        logger.exception("could not apply webhook event %s for %s", event_pk, remote.id)
        message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        WebhookEvent.objects.filter(pk=event_pk).update(error=message, processed_at=None)
        raise ProcessingError(event_pk, message) from exc
    mark_processed(event_pk, outcome)
    if not outcome.matched:
        logger.info("webhook for unknown task %s stored unmatched (event %s)", remote.id, event_pk)
    return outcome


def mark_processed(event_pk: int, outcome: reconcile.Outcome) -> None:
    fields: dict[str, object] = {"processed_at": timezone.now(), "error": ""}
    # An unmatched outcome leaves ``task`` alone: apply_unmatched may have matched the event
    # meanwhile, and NULL would undo that.
    if outcome.task is not None:
        fields["task"] = outcome.task
    WebhookEvent.objects.filter(pk=event_pk).update(**fields)


def apply_unmatched(task: Task) -> int:
    """Apply stored events for ``task.remote_id`` that matched no task when they arrived.
    Returns how many changed the task. A failure is stored on its event and skipped."""
    if not task.remote_id:
        return 0
    applied = 0
    pending = WebhookEvent.objects.filter(remote_task_id=task.remote_id, task__isnull=True)
    fields = ("pk", "body", "source", "dedup_key")
    for event in pending.order_by("first_received_at", "pk").only(*fields):
        scope = scope_of(event.dedup_key)
        if scope is not None and scope != task.backend:
            continue  # vouched for by another backend's key: not for this task
        try:
            remote = parse_body(event.body.encode()).task
        except PayloadError as exc:
            WebhookEvent.objects.filter(pk=event.pk).update(error=f"unparseable: {exc}")
            continue
        try:
            outcome = process(event.pk, remote, source=event.source, task_pk=task.pk, backend=scope)
        except ProcessingError:
            continue
        applied += int(outcome.changed)
    return applied


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name][:500] for name in KEPT_HEADERS if name in lowered}


@contextlib.contextmanager
def _savepoint_if_in_transaction() -> Iterator[None]:
    """A failed INSERT needs a savepoint inside a transaction; in autocommit it needs nothing
    (and ``atomic()`` would cost an extra ``BEGIN`` on SQLite)."""
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield
