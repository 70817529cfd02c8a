"""Storing webhook deliveries and matching results that arrived before their task was known."""

from __future__ import annotations

import json
import logging

from django.db import transaction
from django.utils import timezone

from . import reconcile
from .models import Task, WebhookEvent
from .remote import PayloadError, parse_event

logger = logging.getLogger("tapestry_media.webhooks")


def apply_unmatched(task: Task) -> int:
    """Apply stored events for ``task.remote_id`` that matched no task when they arrived."""
    if not task.remote_id:
        return 0
    applied = 0
    pending = WebhookEvent.objects.filter(remote_task_id=task.remote_id, task__isnull=True)
    for event in pending.order_by("first_received_at", "pk"):
        try:
            remote = parse_event(json.loads(event.body)).task
        except (ValueError, PayloadError) as exc:
            WebhookEvent.objects.filter(pk=event.pk).update(error=f"unparseable: {exc}")
            continue
        with transaction.atomic():
            outcome = reconcile.apply(remote, source=event.source)
            WebhookEvent.objects.filter(pk=event.pk).update(
                task=outcome.task, processed_at=timezone.now(), error=""
            )
        applied += int(outcome.changed)
    return applied
