"""The webhook view with hostile bodies and with DEBUG=True: no body reaches a 5xx, and
Django's technical 500 page never shows a webhook secret, the API key or the derived key."""

from __future__ import annotations

import dataclasses
import hmac
import json
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import requests
from django.db import OperationalError
from django.test import RequestFactory
from django.views.debug import technical_500_response

from tapestry_media import signatures
from tapestry_media.api import webhooks as webhook_api
from tapestry_media.backends import get_backend, webhook_keys
from tapestry_media.conf import Settings, get_settings
from tapestry_media.local.delivery import derived_secret
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.signatures import sign_ittybit
from tapestry_media.status import Status

URL = "/tapestry/webhooks/ittybit/"
SECRET = "whsec_c2VjcmV0LWZvci10aGUtZGVidWctcGFnZQ=="
PLAIN_SECRET = "plain-webhook-secret-3f9a"
API_KEY = "ittybit-api-key-7c41d0"
pytestmark = pytest.mark.django_db

ExcInfo = tuple[type[BaseException], BaseException, types.TracebackType]


@pytest.fixture
def secrets_configured(settings) -> None:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "WEBHOOK_SECRETS": [SECRET, PLAIN_SECRET],
        "API_KEY": API_KEY,
    }


def signed_post(client, body: bytes, secret: str = PLAIN_SECRET):
    return client.post(
        URL,
        body,
        content_type="application/json",
        headers={"Ittybit-Signature": sign_ittybit(body, secret)},
    )


# --- hostile bodies: 400 with the reason, never 5xx ------------------------------------------

DEEP = b'{"id":"task_local_x","data":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
HOSTILE = {
    "recursion": (DEEP, "nested more than"),
    "too_deep": (
        b'{"id":"t1","status":"succeeded","output":' + b"[" * 70 + b"]" * 70 + b"}",
        "nested more than",
    ),
    "surrogate_value": (
        b'{"id":"t1","status":"succeeded","metadata":{"a":"\\ud800"}}',
        "surrogate",
    ),
    "surrogate_key": (b'{"id":"t1","status":"succeeded","output":{"\\udfff":1}}', "surrogate"),
    "surrogate_id": (b'{"id":"task_\\udc00","status":"succeeded"}', "surrogate"),
    "nul": (b'{"id":"t1","status":"succeeded","metadata":{"a":"\\u0000"}}', "NUL"),
    "not_utf8": (b'{"id":"t1","status":"\xed\xa0\x80"}', "not valid JSON"),
    "nan": (b'{"id":"t1","status":"succeeded","progress":NaN}', "not valid JSON"),
    "huge_int": (b'{"id":"t1","progress":' + b"9" * 5000 + b"}", "not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_signed_hostile_body_is_a_400_naming_the_problem(
    client, secrets_configured, name: str
) -> None:
    Task.objects.create(kind="video", input="i.mp4", backend="ittybit", remote_id="t1")
    body, reason = HOSTILE[name]
    response = signed_post(client, body)
    assert response.status_code == 400, response.content
    assert reason in response.json()["detail"]
    assert WebhookEvent.objects.count() == 0
    assert Task.objects.get().status == Status.CREATED


def test_an_unsigned_deep_body_is_refused_before_it_is_parsed(client, secrets_configured) -> None:
    with mock.patch("tapestry_media.remote.json.loads", wraps=json.loads) as parsed:
        response = client.post(URL, DEEP, content_type="application/json")
    assert response.status_code == 401
    assert parsed.call_count == 0
    # Positive control: signed, the same body is parsed (and refused for its depth).
    with mock.patch("tapestry_media.remote.json.loads", wraps=json.loads) as parsed:
        assert signed_post(client, DEEP).status_code == 400
    assert parsed.call_count == 1


def test_the_database_failing_is_still_a_500(client, secrets_configured) -> None:
    task = Task.objects.create(kind="video", input="i.mp4", backend="ittybit", remote_id="t1")
    body = b'{"id":"t1","status":"succeeded"}'
    down = OperationalError("could not connect to server")
    with mock.patch("tapestry_media.reconcile.find_task", side_effect=down):
        response = signed_post(client, body)
    assert response.status_code == 500
    assert response.json()["code"] == "processing_failed"
    task.refresh_from_db()
    assert task.status == Status.CREATED
    # The stored event is applied when it is delivered again.
    assert signed_post(client, body).json()["status"] == "applied"


# --- the technical 500 page ------------------------------------------------------------------


class Boom(Exception):
    pass


def page(request: object, exc_info: ExcInfo) -> str:
    return technical_500_response(request, *exc_info).content.decode()


@pytest.fixture
def unmasked() -> Iterator[None]:
    """The masking patched out: the filter inactive, the settings' repr the plain one."""

    def plain(self: Settings) -> str:
        return repr(dataclasses.asdict(self))

    with (
        mock.patch.object(webhook_api.SecretsFilter, "is_active", return_value=False),
        mock.patch.object(Settings, "__repr__", plain),
    ):
        yield


BODY = b'{"id":"task_local_x","status":"succeeded"}'


def raise_in_view() -> mock._patch[mock.MagicMock]:
    return mock.patch.object(webhook_api.webhooks, "deliver", side_effect=Boom("in the view"))


def raise_in_verify() -> mock._patch[types.SimpleNamespace]:
    """Raised where a secret is a local of signatures._verify_ittybit (by a plain function:
    a mock's own frames would hold the arguments)."""

    def compare_digest(computed: bytes, given: bytes) -> bool:
        raise Boom("in verify")

    fake = types.SimpleNamespace(new=hmac.new, compare_digest=compare_digest)
    return mock.patch.object(signatures, "hmac", fake)


def view_error_page(signature: str, where: Callable[[], Any]) -> str:
    """The technical 500 page of a webhook request on which ``where`` makes the view raise."""
    http_request = RequestFactory().post(
        URL, BODY, content_type="application/json", headers={"Ittybit-Signature": signature}
    )
    with where(), pytest.raises(Boom) as raised:
        webhook_api.webhook_view(http_request)
    html = page(http_request, (raised.type, raised.value, raised.tb))
    assert "Boom" in html
    return html


@pytest.mark.parametrize("where", [raise_in_view, raise_in_verify])
@pytest.mark.parametrize("mask", [True, False], ids=["masked", "unmasked"])
def test_technical_500_page_from_the_view_shows_no_secret(
    settings, secrets_configured, request, where, mask: bool
) -> None:
    settings.DEBUG = True
    if not mask:
        request.getfixturevalue("unmasked")
    html = view_error_page(sign_ittybit(BODY, PLAIN_SECRET), where)
    found = {s for s in (SECRET, PLAIN_SECRET, API_KEY) if s in html}
    assert found == (set() if mask else {SECRET, PLAIN_SECRET, API_KEY})


@pytest.mark.parametrize("mask", [True, False], ids=["masked", "unmasked"])
def test_technical_500_page_shows_no_derived_key(settings, request, mask: bool) -> None:
    settings.DEBUG = True
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": []}
    if not mask:
        request.getfixturevalue("unmasked")
    # The key is never a local of this test: the page shows the test's frames too.
    html = view_error_page(sign_ittybit(BODY, derived_secret()), raise_in_verify)
    assert (derived_secret() in html) is not mask
    assert settings.SECRET_KEY not in html


@pytest.mark.parametrize("mask", [True, False], ids=["masked", "unmasked"])
def test_technical_500_page_from_the_ittybit_session_set_up_shows_no_api_key(
    settings, secrets_configured, request, mask: bool
) -> None:
    settings.DEBUG = True
    if not mask:
        request.getfixturevalue("unmasked")
    boom = Boom("in the session set-up")
    with (
        mock.patch.object(requests.Session, "mount", side_effect=boom),
        pytest.raises(Boom) as raised,
    ):
        get_backend("ittybit")
    # Not a webhook request: Django's own filter, inactive with DEBUG=True.
    html = page(RequestFactory().get("/"), (raised.type, raised.value, raised.tb))
    assert "_build_session" in html
    assert (API_KEY in html) is not mask
    assert (PLAIN_SECRET in html) is not mask


def test_no_secret_in_any_repr(secrets_configured) -> None:
    backend = get_backend("ittybit")
    shown = " ".join(
        repr(x)
        for x in (get_settings(), backend, backend.session, backend.session.auth, webhook_keys())
    )
    for secret in (SECRET, PLAIN_SECRET, API_KEY):
        assert secret not in shown
    assert "API_KEY=***" in repr(get_settings())
