"""Concurrent deliveries on PostgreSQL: a connection per thread, all released on a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tapestry_media.models import Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import SignedWebhook, build_webhook, webhook_url

from .helpers import submitted_upload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


THREADS = 20


def deliver_at_once(webhooks: list[SignedWebhook]) -> list[int]:
    """POST each webhook from its own thread (and connection), all released together."""
    barrier = threading.Barrier(len(webhooks))
    codes: list[int] = [0] * len(webhooks)
    errors: list[BaseException] = []

    def deliver(index: int) -> None:
        try:
            client = Client()
            barrier.wait()
            codes[index] = client.post(webhook_url(), **webhooks[index].client_kwargs()).status_code
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    run_threads([lambda i=i: deliver(i) for i in range(len(webhooks))])
    assert errors == []
    return codes


def run_threads(targets: list[Callable[[], Any]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)


def test_twenty_concurrent_deliveries_of_one_event_make_one_transition(signal_log) -> None:
    video = submitted_upload().tasks.get(name="video")
    signal_log.clear()
    webhook = build_webhook(video, "succeeded")

    codes = deliver_at_once([webhook] * THREADS)

    assert codes == [200] * THREADS
    event = WebhookEvent.objects.get()
    assert event.delivery_count == THREADS
    assert event.task_id == video.pk
    assert signal_log.names() == ["task_updated", "task_succeeded"]
    assert Task.objects.get(pk=video.pk).status == Status.SUCCEEDED


def test_twenty_different_events_for_one_task_end_succeeded_once(signal_log) -> None:
    video = submitted_upload().tasks.get(name="video")
    signal_log.clear()
    webhooks = [
        build_webhook(video, "processing", shape="event", progress=5 * i) for i in range(12)
    ] + [
        build_webhook(video, raw, shape="event")
        for raw in ("succeeded", "completed", "ready", "succeeded", "completed", "ready",
                    "processing", "pending")
    ]  # fmt: skip
    assert len(webhooks) == THREADS

    codes = deliver_at_once(webhooks)

    assert codes == [200] * THREADS
    assert WebhookEvent.objects.count() == THREADS
    assert WebhookEvent.objects.filter(task=video, processed_at__isnull=False).count() == THREADS
    video.refresh_from_db()
    assert video.status == Status.SUCCEEDED
    assert video.progress == 100
    assert signal_log.names().count("task_succeeded") == 1
    # nothing was applied on top of succeeded, and succeeded was reached exactly once
    updates = [k for n, _, k in signal_log.sent if n == "task_updated"]
    assert all(k["previous_status"] != Status.SUCCEEDED for k in updates)
    assert [k["task"].status for k in updates].count(Status.SUCCEEDED) == 1
