"""A host's global DRF and middleware settings cannot break the webhook endpoint."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from tapestry_media.models import Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import build_webhook, post_webhook, webhook_url

pytestmark = pytest.mark.django_db

HOSTILE_REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.FormParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.TemplateHTMLRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "1/day"},
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.AcceptHeaderVersioning",
    "ALLOWED_VERSIONS": ["2"],
    "DEFAULT_VERSION": "2",
}


@pytest.fixture
def hostile(settings) -> None:
    settings.REST_FRAMEWORK = HOSTILE_REST_FRAMEWORK
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]


@pytest.fixture
def task() -> Task:
    return Task.objects.create(
        kind="video",
        input="https://x.test/a.mov",
        backend="dummy",
        remote_id="task_hostile",
        status=Status.PENDING,
    )


def test_signed_delivery_still_works_under_hostile_settings(hostile, task) -> None:
    client = Client(enforce_csrf_checks=True)
    # Twice (and more): a 1/day anonymous throttle would refuse the second.
    for status in ("processing", "succeeded", "succeeded"):
        webhook = build_webhook(task, status)
        response = client.post(
            webhook_url(),
            **webhook.client_kwargs(),
            HTTP_ACCEPT="text/html; version=1",  # neither the renderer nor the version fits
        )
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/json"
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    assert WebhookEvent.objects.count() == 2


def test_unsigned_delivery_is_still_a_401_not_a_login_redirect(hostile, task) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(webhook_url(), data=b'{"id":"task_hostile","status":"succeeded"}',
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 401
    assert response.json()["code"] == "missing_header"
    assert Task.objects.get(pk=task.pk).status == Status.PENDING


def test_the_hostile_settings_do_bite_other_views(hostile, client) -> None:
    """Positive control: the same settings really do lock down an ordinary view."""
    response = client.get("/admin/")
    assert response.status_code == 302  # LoginRequiredMiddleware is active
    from rest_framework.settings import api_settings

    assert [c.__name__ for c in api_settings.DEFAULT_PERMISSION_CLASSES] == ["IsAuthenticated"]


def test_logged_in_session_without_csrf_token_is_not_refused(hostile, task, user) -> None:
    """SessionAuthentication would demand a CSRF token from a logged-in browser."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = post_webhook(client, task, "succeeded")
    assert response.status_code == 200, response.content


def test_atomic_requests_does_not_wrap_the_view(settings, task) -> None:
    match = resolve(webhook_url())
    assert "default" in match.func._non_atomic_requests
    assert match.func.login_required is False
    assert match.func.csrf_exempt is True


@pytest.mark.django_db(transaction=True)
def test_atomic_requests_leaves_the_view_in_autocommit(monkeypatch) -> None:
    """Under ATOMIC_REQUESTS a wrapped view would run the delivery as a savepoint inside the
    request's transaction (locks held to the end of the response); this one runs it in its own
    transaction, committed before the response."""
    task = Task.objects.create(
        kind="video", input="https://x.test/a.mov", backend="dummy", remote_id="task_atomic"
    )
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    webhook = build_webhook(task, "succeeded")
    with CaptureQueriesContext(connection) as queries:
        response = Client().post(webhook_url(), **webhook.client_kwargs())
    assert response.status_code == 200
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert (statements[:2], statements[-1]) == (["BEGIN", "SELECT"], "COMMIT"), statements
    assert "SAVEPOINT" not in statements
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED
