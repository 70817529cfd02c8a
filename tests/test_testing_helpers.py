"""tapestry_media.testing.webhooks: the helpers host projects use in their own tests."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import TestCase

from tapestry_media import signals
from tapestry_media.backends import get_backend
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.conf import get_settings
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.remote import parse_event
from tapestry_media.signatures import verify
from tapestry_media.status import Status
from tapestry_media.testing.jobs import drain_jobs, enqueued_names
from tapestry_media.testing.webhooks import (
    SignedWebhook,
    build_webhook,
    dummy_backend,
    post_webhook,
    remote_id_for,
    sign,
    task_payload,
)

from .helpers import app_alias, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def task() -> Task:
    task = Task(kind="video", input="https://x.test/a.mov", backend="dummy", remote_id="task_h1")
    task.metadata = {"tapestry_task": str(task.uuid), "campaign": "summer-launch"}
    task.save()
    return task


@pytest.mark.parametrize("shape", ["task", "event"])
@pytest.mark.parametrize("scheme", ["ittybit", "standard"])
def test_build_webhook_in_each_shape_and_scheme_verifies(task, shape, scheme) -> None:
    webhook = build_webhook(task, "succeeded", shape=shape, scheme=scheme)
    assert verify(webhook.headers, webhook.body, get_settings().WEBHOOK_SECRETS) == scheme
    event = parse_event(webhook.payload)
    assert event.task.id == "task_h1"
    assert event.task.metadata == task.metadata
    assert event.task.output_url == "https://cdn.example.com/task_h1.mp4"
    if shape == "event":
        assert webhook.payload["object"] == "event"
        assert event.id is not None
        assert event.id.startswith("evt_")
        assert event.topic == "task.succeeded"
    else:
        assert event.id is None
        assert webhook.payload["status"] == "succeeded"


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("queued", Status.PENDING), ("running", Status.PROCESSING), ("ready", Status.SUCCEEDED),
     ("error", Status.FAILED), ("canceled", Status.CANCELLED), ("mystery", None)],
)  # fmt: skip
def test_any_raw_status(task, raw, normalised) -> None:
    payload = task_payload(task, raw)
    event = parse_event(payload)
    assert (event.task.raw_status, event.task.status) == (raw, normalised)
    assert ("error" in payload) is (normalised == Status.FAILED)
    assert ("output" in payload) is (normalised == Status.SUCCEEDED)


def test_payload_overrides(task) -> None:
    payload = task_payload(
        task, "processing", progress=40, metadata={}, remote_id="task_other", kind="audio"
    )
    assert payload == {
        "id": "task_other",
        "object": "task",
        "kind": "audio",
        "status": "processing",
        "metadata": {},
        "progress": 40,
    }


def test_post_webhook_applies_it_and_runs_the_signals_once(client, task) -> None:
    sent: list[str] = []

    def receiver(sender, task, **kwargs) -> None:
        sent.append(task.status)

    signals.task_succeeded.connect(receiver)
    try:
        # An enclosing capture must not run the callbacks a second time.
        with TestCase.captureOnCommitCallbacks(using=app_alias(), execute=True):
            response = post_webhook(client, task, "succeeded", shape="event", scheme="standard")
    finally:
        signals.task_succeeded.disconnect(receiver)
    assert response.status_code == 200
    assert sent == [Status.SUCCEEDED]
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED


def test_post_webhook_without_running_callbacks(client, task) -> None:
    sent: list[str] = []
    signals.task_succeeded.connect(lambda sender, **kw: sent.append("x"), weak=False,
                                   dispatch_uid="helpers-test")  # fmt: skip
    try:
        with TestCase.captureOnCommitCallbacks(using=app_alias()) as callbacks:
            response = post_webhook(client, task, "succeeded", execute_on_commit=False)
        assert response.status_code == 200
        assert sent == []  # the test transaction never commits
        # Positive control: the signal was waiting for the commit; running its callback sends it.
        assert callbacks
        for callback in callbacks:
            callback()
        assert sent == ["x"]
    finally:
        signals.task_succeeded.disconnect(dispatch_uid="helpers-test")


def test_post_a_ready_webhook_and_a_tampered_one(client, task) -> None:
    webhook = build_webhook(task, "failed")
    tampered = SignedWebhook(webhook.body.replace(b"failed", b"succeeded"), webhook.headers)
    assert post_webhook(client, tampered).status_code == 401
    assert post_webhook(client, webhook).status_code == 200
    assert Task.objects.get(pk=task.pk).status == Status.FAILED


def test_a_task_without_remote_id_is_matched_by_its_correlation_key(client) -> None:
    task = Task(kind="image", input="https://x.test/a.jpg", backend="dummy")
    task.metadata = {"tapestry_task": str(task.uuid)}
    task.save()
    rid = remote_id_for(task)
    assert rid == remote_id_for(task)  # stable
    assert post_webhook(client, task, "succeeded").json()["status"] == "applied"
    task.refresh_from_db()
    assert (task.remote_id, task.output_url) == (rid, f"https://cdn.example.com/{rid}.jpg")


def test_sign_with_an_explicit_secret_and_a_clear_error_without_one(settings) -> None:
    headers = sign(b"{}", secret="s3cret")
    assert verify(headers, b"{}", ["s3cret"]) == "ittybit"
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": ["plain-only"]}
    with pytest.raises(ValueError, match="holds no 'whsec_' secret"):
        sign(b"{}", scheme="standard")


def test_dummy_backend_switches_and_restores(settings) -> None:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "BACKEND": "ittybit",
        "API_KEY": "key_real",
    }
    assert get_settings().backend_name == "ittybit"
    with dummy_backend(SUBMIT_MAX_RETRIES=1) as backend:
        assert backend is DummyBackend
        assert isinstance(get_backend(), DummyBackend)
        assert get_settings().API_KEY == "key_real"  # other settings are kept
        assert get_settings().SUBMIT_MAX_RETRIES == 1
        DummyBackend.failures = [RuntimeError("x")]  # type: ignore[list-item]
    assert get_settings().backend_name == "ittybit"
    assert django_settings.TAPESTRY_MEDIA["BACKEND"] == "ittybit"
    assert DummyBackend.failures == []  # cleared on the way out


@pytest.fixture
def cloud_backend(settings) -> None:
    """A host configured for the real Ittybit backend, set up before the decorator runs."""
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "BACKEND": "ittybit",
        "API_KEY": "key_real",
    }


@dummy_backend(SUBMIT_MAX_RETRIES=1)
def test_dummy_backend_as_a_decorator(cloud_backend) -> None:
    # Without the decorator the backend is the fixture's ``ittybit``.
    assert get_settings().backend_name == "dummy"
    assert isinstance(get_backend(), DummyBackend)
    assert get_settings().SUBMIT_MAX_RETRIES == 1
    assert get_settings().API_KEY == "key_real"


def test_dummy_backend_as_a_decorator_restores_the_host_backend(cloud_backend) -> None:
    @dummy_backend()
    def inside() -> str:
        return get_settings().backend_name

    assert inside() == "dummy"
    assert get_settings().backend_name == "ittybit"


def test_helpers_write_nothing_by_themselves(client, task) -> None:
    webhook = build_webhook(task, "succeeded")
    task_payload(task, "failed")
    assert not WebhookEvent.objects.exists()
    assert Task.objects.get(pk=task.pk).status == Status.CREATED
    # Positive control: posting the built webhook is what writes.
    post_webhook(client, webhook)
    assert WebhookEvent.objects.count() == 1


@pytest.mark.routed
def test_drain_jobs_runs_the_callbacks_on_the_alias_of_this_apps_models(signal_log) -> None:
    """Under a database router the submit job's ``on_commit`` callbacks (the host signals) are
    on the routed alias, not ``default``: ``drain_jobs`` captures and runs them there."""
    with TestCase.captureOnCommitCallbacks(using=app_alias(), execute=True):
        upload()
    assert enqueued_names() == ["submit_task", "submit_task"]
    drain_jobs(TestCase.captureOnCommitCallbacks)
    assert enqueued_names() == []
    assert signal_log.names().count("task_submitted") == 2
