"""The webhook endpoint: a result finds its task, is stored once, and only moves it forward."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext

from tapestry_media import aggregate
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.models import Submission, Task, WebhookEvent
from tapestry_media.pipeline import start_new_attempt
from tapestry_media.status import Status
from tapestry_media.testing.jobs import run_jobs
from tapestry_media.testing.webhooks import (
    SignedWebhook,
    build_webhook,
    post_webhook,
    task_payload,
    webhook_url,
)

from .helpers import app_alias, submitted_upload, video_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def sub() -> Submission:
    return submitted_upload()


@pytest.fixture
def video(sub: Submission) -> Task:
    task = sub.tasks.get(name="video")
    assert task.status == Status.PENDING
    assert task.remote_id
    return task


@pytest.fixture
def poster(sub: Submission) -> Task:
    return sub.tasks.get(name="poster")


def post(client: Client, webhook: SignedWebhook) -> Any:
    return post_webhook(client, webhook)


# --- the happy path --------------------------------------------------------------------------


def test_valid_webhook_updates_the_task_and_fires_each_signal_once(
    client, sub, video, poster, signal_log
) -> None:
    webhook = build_webhook(video, "succeeded")
    response = post(client, webhook)

    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert response.json() == {"status": "applied", "event": event.pk}
    video.refresh_from_db()
    assert video.status == Status.SUCCEEDED
    assert video.raw_status == "succeeded"
    assert video.output_url == f"https://cdn.example.com/{video.remote_id}.mp4"
    assert video.output["format"] == "mp4"
    assert video.progress == 100
    assert video.finished_at is not None
    assert video.started_at is not None
    assert (event.task_id, event.topic, event.remote_task_id) == (
        video.pk,
        "task.succeeded",
        video.remote_id,
    )
    assert event.processed_at is not None
    assert event.error == ""
    assert event.delivery_count == 1
    assert event.signature_scheme == "ittybit"
    assert event.headers == {"content-type": "application/json"}
    assert event.body.encode() == webhook.body

    assert signal_log.names() == ["task_updated", "task_succeeded"]
    updated = signal_log.only("task_updated")
    assert updated["task"].pk == video.pk
    assert updated["task"].status == Status.SUCCEEDED
    assert (updated["previous_status"], updated["source"]) == ("pending", "webhook")
    sub.refresh_from_db()
    assert sub.status == "processing"  # the poster is still pending

    signal_log.clear()
    assert post(client, build_webhook(poster, "succeeded")).status_code == 200
    assert signal_log.names() == ["task_updated", "task_succeeded", "submission_processed"]
    processed = signal_log.only("submission_processed")
    assert processed["submission"].pk == sub.pk
    assert processed["status"] == "ready"
    sub.refresh_from_db()
    assert sub.status == "ready"
    assert sub.processed_at is not None


def test_same_delivery_five_times_is_one_event_one_change_one_set_of_signals(
    client, video, signal_log
) -> None:
    webhook = build_webhook(video, "succeeded")
    answers = [post(client, webhook).json()["status"] for _ in range(5)]

    assert answers == ["applied"] + ["duplicate"] * 4
    event = WebhookEvent.objects.get()
    assert event.delivery_count == 5
    assert event.last_received_at > event.first_received_at
    assert signal_log.names() == ["task_updated", "task_succeeded"]
    video.refresh_from_db()
    assert video.status == Status.SUCCEEDED


def test_event_envelope_is_deduplicated_by_its_event_id(client, video, signal_log) -> None:
    first = build_webhook(video, "succeeded", shape="event", event_id="evt_42")
    # A redelivery may be serialised differently (another created_at): same event id.
    again = build_webhook(video, "succeeded", shape="event", event_id="evt_42", progress=100)
    assert first.body != again.body
    assert post(client, first).json()["status"] == "applied"
    assert post(client, again).json()["status"] == "duplicate"
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.dedup_key, event.delivery_count) == ("evt_42", "event:evt_42", 2)
    assert signal_log.names() == ["task_updated", "task_succeeded"]


def test_standard_webhooks_signature_and_envelope(client, video) -> None:
    webhook = build_webhook(video, "completed", shape="event", scheme="standard")
    response = post(client, webhook)
    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert event.signature_scheme == "standard"
    assert event.headers["webhook-id"] == webhook.headers["webhook-id"]
    video.refresh_from_db()
    assert (video.status, video.raw_status) == (Status.SUCCEEDED, "completed")


def test_processing_after_succeeded_changes_nothing(client, video, signal_log) -> None:
    assert post(client, build_webhook(video, "succeeded")).json()["status"] == "applied"
    video.refresh_from_db()
    before = Task.objects.filter(pk=video.pk).values().get()

    late = build_webhook(video, "processing", progress=40)
    response = post(client, late)

    assert response.status_code == 200
    assert response.json()["status"] == "stale"
    assert Task.objects.filter(pk=video.pk).values().get() == before
    assert WebhookEvent.objects.count() == 2  # recorded all the same
    assert WebhookEvent.objects.get(raw_status="processing").task_id == video.pk
    assert signal_log.names() == ["task_updated", "task_succeeded"]


def test_progress_then_failure(client, video, signal_log) -> None:
    assert post(client, build_webhook(video, "processing", progress=30)).status_code == 200
    video.refresh_from_db()
    assert (video.status, video.progress) == (Status.PROCESSING, 30)
    error = {"kind": "input_invalid", "message": "no video stream"}
    assert post(client, build_webhook(video, "failed", error=error)).status_code == 200
    video.refresh_from_db()
    assert video.status == Status.FAILED
    assert video.error == error
    assert signal_log.names() == [
        "task_updated",
        "task_updated",
        "task_failed",
        # the primary step failed: the submission has failed, though the poster still runs
        "submission_processed",
    ]
    failed = signal_log.only("task_failed")
    assert failed["task"].pk == video.pk
    assert failed["error"] == error
    assert signal_log.only("submission_processed")["status"] == "failed"


def test_unknown_status_is_kept_as_text_and_changes_no_status(client, video, signal_log) -> None:
    response = post(client, build_webhook(video, "transmogrifying"))
    assert response.status_code == 200
    video.refresh_from_db()
    assert (video.status, video.raw_status) == (Status.PENDING, "transmogrifying")


# --- ordering: results before the reply, unmatched, old attempts ------------------------------


def test_webhook_during_the_create_call_ends_in_the_right_state(client, signal_log) -> None:
    """The dummy backend delivers the result *inside* ``create``: the task has no remote id
    yet and is found by the correlation key in the echoed metadata."""
    answers: list[dict[str, Any]] = []

    def deliver_during_create(spec: Any, remote_id: str) -> None:
        payload = {
            "id": remote_id,
            "status": "succeeded",
            "metadata": spec.metadata,
            "output": {"url": f"https://cdn.example.com/{remote_id}.mp4"},
        }
        task = Task.objects.get(uuid=spec.metadata["tapestry_task"])
        assert task.remote_id is None
        assert task.status == Status.SUBMITTING
        answers.append(post_webhook(client, _signed(payload)).json())

    DummyBackend.on_create = deliver_during_create
    sub = submitted_upload()

    assert [a["status"] for a in answers] == ["applied", "applied"]
    for task in sub.tasks.all():
        assert task.status == Status.SUCCEEDED, task.name
        assert task.remote_id == f"task_dummy_{task.idempotency_key}"
        assert task.submitted_at is not None
    sub.refresh_from_db()
    assert sub.status == "ready"
    assert signal_log.names().count("task_succeeded") == 2
    assert signal_log.names().count("submission_processed") == 1


def test_unmatched_result_is_applied_when_the_task_learns_its_remote_id(client, signal_log) -> None:
    """No remote id and no correlation key: stored unmatched, applied by the reply."""
    seen: list[tuple[str, int]] = []

    def deliver_without_metadata(spec: Any, remote_id: str) -> None:
        if spec.kind != "video":
            return
        payload = {"id": remote_id, "status": "succeeded", "output": "https://cdn.x/v.mp4"}
        response = post_webhook(client, _signed(payload))
        seen.append((response.json()["status"], response.status_code))
        event = WebhookEvent.objects.get(remote_task_id=remote_id)
        assert event.task_id is None
        assert event.processed_at is not None

    DummyBackend.on_create = deliver_without_metadata
    sub = submitted_upload()

    assert seen == [("unmatched", 200)]
    video = sub.tasks.get(name="video")
    assert video.status == Status.SUCCEEDED
    assert video.output_url == "https://cdn.x/v.mp4"
    assert WebhookEvent.objects.get().task_id == video.pk
    assert sub.tasks.get(name="poster").status == Status.PENDING  # positive control
    assert signal_log.names().count("task_succeeded") == 1


def test_unmatched_result_waits_for_its_task(client) -> None:
    payload = {"id": "task_nobody", "status": "succeeded"}
    response = post_webhook(client, _signed(payload))
    assert response.json()["status"] == "unmatched"
    event = WebhookEvent.objects.get()
    assert event.task is None
    assert event.remote_task_id == "task_nobody"


def test_result_for_an_old_attempt_changes_nothing(client, video, signal_log) -> None:
    old_remote_id = video.remote_id
    assert post(client, build_webhook(video, "failed")).status_code == 200
    with TestCase.captureOnCommitCallbacks(using=app_alias(), execute=True):
        assert start_new_attempt(video.pk)
    run_jobs()
    video.refresh_from_db()
    assert video.attempt == 2
    assert video.status == Status.PENDING
    assert video.remote_id != old_remote_id
    before = Task.objects.filter(pk=video.pk).values().get()
    signal_log.clear()

    late = build_webhook(video, "succeeded", remote_id=old_remote_id)
    response = post(client, late)

    assert response.json()["status"] == "old_attempt"
    assert Task.objects.filter(pk=video.pk).values().get() == before
    event = WebhookEvent.objects.get(remote_task_id=old_remote_id, raw_status="succeeded")
    assert event.task_id == video.pk
    assert event.processed_at is not None
    assert signal_log.sent == []
    # positive control: the current attempt's result does apply
    assert post(client, build_webhook(video, "succeeded")).json()["status"] == "applied"


def test_result_for_a_superseded_task_changes_nothing(client, sub, video) -> None:
    with TestCase.captureOnCommitCallbacks(using=app_alias(), execute=True):
        sub.file = video_upload("second.mp4")
        sub.save()
    video.refresh_from_db()
    assert video.status == Status.SUPERSEDED
    response = post(client, build_webhook(video, "succeeded"))
    assert response.json()["status"] == "superseded"
    video.refresh_from_db()
    assert video.status == Status.SUPERSEDED
    assert video.output is None


# --- failures ---------------------------------------------------------------------------------


def test_processing_error_is_stored_answers_500_and_a_retry_applies_it(
    client, video, monkeypatch
) -> None:
    real_refresh = aggregate.refresh
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return real_refresh(*args, **kwargs)

    # Fails after the event insert and the task's UPDATE: both must roll back.
    monkeypatch.setattr(aggregate, "refresh", flaky)
    webhook = build_webhook(video, "succeeded")

    first = post(client, webhook)
    assert first.status_code == 500
    event = WebhookEvent.objects.get()
    assert first.json()["event"] == event.pk
    assert first.json()["code"] == "processing_failed"
    assert event.error == "RuntimeError: database hiccup"
    assert (event.processed_at, event.task_id, event.delivery_count) == (None, None, 1)
    assert Task.objects.get(pk=video.pk).status == Status.PENDING

    second = post(client, webhook)  # the API retries a 5xx
    assert second.status_code == 200
    assert second.json()["status"] == "applied"
    event.refresh_from_db()
    assert (event.error, event.delivery_count) == ("", 2)
    assert event.processed_at is not None
    assert event.task_id == video.pk
    assert Task.objects.get(pk=video.pk).status == Status.SUCCEEDED

    assert post(client, webhook).json()["status"] == "duplicate"


class Crash(BaseException):
    """A process dying mid-request: nothing in the app may catch it (no error is stored)."""


def test_a_crash_inside_a_delivery_leaves_nothing_and_the_retry_applies(
    client, video, monkeypatch
) -> None:
    real_refresh = aggregate.refresh
    crash = {"armed": True}

    def dies(*args: Any, **kwargs: Any) -> Any:
        if crash.pop("armed", False):
            raise Crash  # after the event INSERT and the task UPDATE
        return real_refresh(*args, **kwargs)

    monkeypatch.setattr(aggregate, "refresh", dies)
    webhook = build_webhook(video, "succeeded")
    with pytest.raises(Crash):
        post(client, webhook)
    assert not WebhookEvent.objects.exists()
    assert Task.objects.get(pk=video.pk).status == Status.PENDING

    retry = post(client, webhook)  # no 2xx was sent, so the API delivers it again
    assert retry.json()["status"] == "applied"
    assert Task.objects.get(pk=video.pk).status == Status.SUCCEEDED
    assert WebhookEvent.objects.get().delivery_count == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"status": "succeeded"}, "no 'id'"),
        ({"id": "task_1"}, "no 'status'"),
        ([1, 2], "expected a JSON object"),
        ({"object": "event", "id": "evt_1", "kind": "task.succeeded", "data": "x"}, "JSON object"),
    ],
)
def test_signed_body_that_is_not_a_task_is_a_400(client, video, payload, reason) -> None:
    response = post_webhook(client, _signed(payload))
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_only_post_is_allowed(client) -> None:
    assert client.get(webhook_url()).status_code == 405
    assert client.put(webhook_url()).status_code == 405


def test_request_makes_no_network_call(client, video, no_network) -> None:
    assert post(client, build_webhook(video, "succeeded")).status_code == 200
    assert Task.objects.get(pk=video.pk).status == Status.SUCCEEDED


def test_url_is_mounted_where_the_docs_say() -> None:
    assert webhook_url() == "/tapestry/webhooks/ittybit/"


def test_payload_helper_round_trips_through_the_parser(video) -> None:
    from tapestry_media.remote import parse_task

    remote = parse_task(task_payload(video, "succeeded"))
    assert remote.id == video.remote_id
    assert remote.metadata == video.metadata


def _signed(payload: Any) -> SignedWebhook:
    from tapestry_media.testing.webhooks import sign

    body = json.dumps(payload).encode()
    return SignedWebhook(body, sign(body))


# --- query budget -----------------------------------------------------------------------------


#: Where row locks exist, the aggregate locks the submission before reading its steps.
LOCK_SUBMISSION = ["SELECT"] if connection.features.has_select_for_update else []


def _statements(queries: CaptureQueriesContext) -> list[str]:
    # mysqlclient keeps no text for a statement the server refused: that is the repeat's INSERT.
    texts = [
        q["sql"] if q["sql"] not in (None, "None") else "INSERT" for q in queries.captured_queries
    ]
    return [" ".join(text.split()[:2]).upper() for text in texts]


def set_columns(queries: CaptureQueriesContext, table: str) -> set[str]:
    """The columns the UPDATEs of ``table`` write."""
    found: set[str] = set()
    for query in queries.captured_queries:
        head, _, rest = query["sql"].partition(" SET ")
        if head.startswith("UPDATE") and table in head:
            found.update(re.findall(r'[`"](\w+)[`"] = ', rest.split(" WHERE ")[0]))
    return found


def indexed_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        c for info in found.values() if info["index"] or info["unique"] for c in info["columns"]
    }


@pytest.mark.django_db(transaction=True)
def test_query_count_first_delivery_and_duplicate_in_autocommit() -> None:
    """As in production: the view runs in autocommit (``non_atomic_requests``)."""
    video = submitted_upload().tasks.get(name="video")
    webhook = build_webhook(video, "succeeded")
    client = Client()

    with CaptureQueriesContext(connection) as first:
        assert post_webhook(client, webhook, execute_on_commit=False).status_code == 200
    with CaptureQueriesContext(connection) as repeat:
        assert post_webhook(client, webhook, execute_on_commit=False).status_code == 200

    # Django logs the transaction's BEGIN and COMMIT (debug_transaction) on every database.
    assert [s.split()[0] for s in _statements(first)] == [
        "BEGIN",
        "SELECT",  # the task by remote id, FOR UPDATE: locked before anything points at it
        "INSERT",  # the event, processed, matched to the task
        "UPDATE",  # the task (Task.save with the changed fields)
        *LOCK_SUBMISSION,  # the submission, FOR UPDATE (siblings finishing at once)
        "SELECT",  # the submission's steps
        "UPDATE",  # the submission's aggregate status (conditional)
        "COMMIT",
    ], _statements(first)
    assert len(first) == 7 + len(LOCK_SUBMISSION)  # 5 (6 with row locks) statements + BEGIN/COMMIT
    # The repeat's INSERT is refused: its transaction rolls back, a second one counts it.
    kinds = [s.split()[0] for s in _statements(repeat)]
    assert kinds[:3] == ["BEGIN", "SELECT", "INSERT"], _statements(repeat)
    assert [k for k in kinds if k not in ("BEGIN", "COMMIT", "ROLLBACK")] == [
        "SELECT",  # the task, FOR UPDATE
        "INSERT",  # refused: the dedup key is taken
        "UPDATE",  # the count, in autocommit
    ], _statements(repeat)
    if connection.features.has_select_for_update:
        assert "FOR UPDATE" in first.captured_queries[1]["sql"]
    # No indexed column of the submission is written (the file name's, 0011, among them): on
    # PostgreSQL the update stays HOT.
    written = set_columns(first, "tapestry_media_submission")
    assert written == {"status", "processed_at", "updated_at"}
    assert not written & indexed_columns("tapestry_media_submission")
    event = WebhookEvent.objects.get()
    assert (event.task_id, event.delivery_count) == (video.pk, 2)
    assert event.processed_at is not None


def test_query_count_inside_a_test_transaction(client, video) -> None:
    """Inside an outer transaction the delivery's transaction is a savepoint."""
    webhook = build_webhook(video, "succeeded")
    with CaptureQueriesContext(connection) as first:
        assert post_webhook(client, webhook, execute_on_commit=False).status_code == 200
    with CaptureQueriesContext(connection) as repeat:
        assert post_webhook(client, webhook, execute_on_commit=False).status_code == 200
    kinds = [s.split()[0] for s in _statements(first)]
    assert kinds == [
        "SAVEPOINT", "SELECT", "INSERT", "UPDATE", *LOCK_SUBMISSION, "SELECT", "UPDATE", "RELEASE",
    ], _statements(first)  # fmt: skip
    kinds = [s.split()[0] for s in _statements(repeat)]
    assert kinds == [
        "SAVEPOINT", "SELECT", "INSERT", "ROLLBACK", "RELEASE", "UPDATE"
    ], _statements(repeat)  # fmt: skip
