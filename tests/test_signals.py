"""Host signals: each is sent once, after commit, with exactly the documented kwargs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from tapestry_media import reconcile, signals, webhooks
from tapestry_media.models import Submission, Task
from tapestry_media.remote import parse_task
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import (
    build_webhook,
    post_webhook,
    run_on_commit_callbacks,
    task_payload,
)

from .helpers import SignalLog, app_alias, submitted_upload

pytestmark = pytest.mark.django_db


# The kwargs each signal's docstring in tapestry_media/signals.py promises (besides sender).
DOCUMENTED = {
    "task_submitted": {"task"},
    "task_updated": {"task", "previous_status", "source"},
    "task_succeeded": {"task"},
    "task_failed": {"task", "error"},
    "submission_processed": {"submission", "status"},
}


def assert_documented(log: SignalLog) -> None:
    for name, sender, kwargs in log.sent:
        assert set(kwargs) == DOCUMENTED[name], name
        expected_sender = Submission if name == "submission_processed" else Task
        assert sender is expected_sender, name


def test_a_whole_upload_sends_each_signal_once_with_documented_kwargs(client, signal_log) -> None:
    pre_submit: list[dict[str, Any]] = []

    def on_pre_submit(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal")
        pre_submit.append(kwargs)

    signals.task_pre_submit.connect(on_pre_submit)
    try:
        sub = submitted_upload()
    finally:
        signals.task_pre_submit.disconnect(on_pre_submit)
    assert [set(k) for k in pre_submit] == [{"task", "metadata", "submission"}] * 2
    assert pre_submit[0]["submission"].pk == sub.pk

    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    post_webhook(client, video, "succeeded")
    post_webhook(client, poster, "failed", error={"kind": "bad_frame", "message": "no frame"})

    assert_documented(signal_log)
    assert signal_log.names() == [
        "task_submitted", "task_updated",  # submit: created -> pending
        "task_submitted", "task_updated",
        "task_updated", "task_succeeded",  # video webhook
        "task_updated", "task_failed", "submission_processed",  # poster webhook
    ]  # fmt: skip
    submitted = [k for n, _, k in signal_log.sent if n == "task_submitted"]
    assert all(k["task"].remote_id for k in submitted)
    sources = [k["source"] for n, _, k in signal_log.sent if n == "task_updated"]
    assert sources == ["submit", "submit", "webhook", "webhook"]
    failed = signal_log.only("task_failed")
    assert failed["task"].pk == poster.pk
    assert failed["error"] == {"kind": "bad_frame", "message": "no frame"}
    processed = signal_log.only("submission_processed")
    assert (processed["submission"].pk, processed["status"]) == (sub.pk, "partial")


def test_cancelled_sends_task_failed_with_a_reason(client, signal_log) -> None:
    sub = submitted_upload()
    signal_log.clear()
    post_webhook(client, sub.tasks.get(name="poster"), "canceled")
    failed = signal_log.only("task_failed")
    assert failed["task"].status == Status.CANCELLED
    assert failed["error"] == {"kind": "canceled", "message": "no reason given"}
    assert_documented(signal_log)


def test_local_and_poll_sources(signal_log) -> None:
    sub = submitted_upload()
    video, poster = sub.tasks.get(name="video"), sub.tasks.get(name="poster")
    signal_log.clear()
    # The test transaction never commits: run_on_commit_callbacks does what a commit would.
    with run_on_commit_callbacks(), transaction.atomic(using=app_alias()):
        body = build_webhook(video, "processing").body
        assert webhooks.deliver(body, source="local").status == "applied"
        reconcile.apply(parse_task(task_payload(poster, "processing")), source="poll")
        assert signal_log.sent == []  # nothing before the commit
    sources = [k["source"] for n, _, k in signal_log.sent if n == "task_updated"]
    assert sources == ["local", "poll"]
    assert_documented(signal_log)


@pytest.mark.django_db(transaction=True)
def test_signals_wait_for_the_commit_and_a_rollback_sends_none(signal_log) -> None:
    task = Task.objects.create(
        kind="video", input="https://x.test/a.mov", backend="dummy", remote_id="task_commit"
    )
    remote = parse_task({"id": "task_commit", "status": "succeeded"})

    def apply_then_fail() -> None:
        with transaction.atomic(using=app_alias()):
            reconcile.apply(remote, source="poll")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        apply_then_fail()
    assert signal_log.sent == []
    assert Task.objects.get(pk=task.pk).status == Status.CREATED

    with transaction.atomic(using=app_alias()):
        reconcile.apply(remote, source="poll")
        assert signal_log.sent == []  # inside the transaction: not yet
    assert signal_log.names() == ["task_updated", "task_succeeded"]
    assert signal_log.only("task_updated")["source"] == "poll"


@pytest.mark.django_db(transaction=True)
def test_a_raising_receiver_is_logged_and_loses_nothing(signal_log, caplog) -> None:
    task = Task.objects.create(
        kind="video", input="https://x.test/a.mov", backend="dummy", remote_id="task_raise"
    )

    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError("host bug")

    signals.task_updated.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="tapestry_media.signals"):
            response = Client().post(
                "/tapestry/webhooks/ittybit/", **build_webhook(task, "succeeded").client_kwargs()
            )
    finally:
        signals.task_updated.disconnect(broken)

    assert response.status_code == 200
    assert response.json()["status"] == "applied"
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED  # the change is kept
    assert signal_log.names() == ["task_updated", "task_succeeded"]  # the others still ran
    errors = [r for r in caplog.records if r.name == "tapestry_media.signals"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is ValueError
    assert "broken" in errors[0].getMessage()
