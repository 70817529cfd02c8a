"""Standard Webhooks as its reference library sends it: deliveries signed by
``standardwebhooks`` itself, Svix's header names, unpadded ``whsec_`` secrets, and our own
signatures checked by the library's ``verify``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tapestry_media import signatures
from tapestry_media.checks import check_settings
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import webhook_url

pytestmark = pytest.mark.django_db

KEY = b"tapestry endpoint key, 32 bytes."
PADDED = "whsec_" + base64.b64encode(KEY).decode()
UNPADDED = PADDED.rstrip("=")
BODY = (
    b'{"id":"task_lib_001","status":"succeeded","metadata":{"user_id":"usr_abc123"},'
    b'"output":{"url":"https://cdn.ittybit.com/lib.mp4"}}'
)


@pytest.fixture
def task() -> Task:
    return Task.objects.create(
        kind="video",
        input="https://tapestry-app.com/media/a.mov",
        backend="dummy",
        remote_id="task_lib_001",
        status=Status.PENDING,
        raw_status="pending",
    )


def use_secret(settings, secret: str) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": [secret]}


def library_headers(secret: str, *, prefix: str = "webhook") -> dict[str, str]:
    now = datetime.now(tz=UTC)
    signature = Webhook(secret).sign("msg_lib_001", now, BODY.decode())
    return {
        f"{prefix}-id": "msg_lib_001",
        f"{prefix}-timestamp": str(int(now.timestamp())),
        f"{prefix}-signature": signature,
    }


def send(client, headers: dict[str, str]) -> Any:
    return client.post(webhook_url(), data=BODY, content_type="application/json", headers=headers)


def test_unpadded_secret_really_lacks_padding() -> None:
    assert PADDED.endswith("=")
    assert not UNPADDED.endswith("=")


@pytest.mark.parametrize("prefix", ["webhook", "svix"])
@pytest.mark.parametrize("secret", [PADDED, UNPADDED], ids=["padded", "unpadded"])
def test_a_delivery_signed_by_the_reference_library_is_applied(
    client, settings, task, prefix, secret
) -> None:
    use_secret(settings, secret)
    response = send(client, library_headers(secret, prefix=prefix))
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().signature_scheme == "standard"
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED


@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_a_library_signature_with_another_key_is_refused(client, settings, task, prefix) -> None:
    use_secret(settings, PADDED)
    other = "whsec_" + base64.b64encode(b"another key entirely, 32 bytes!!").decode()
    response = send(client, library_headers(other, prefix=prefix))
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "bad_signature"
    assert Task.objects.get(pk=task.pk).status == Status.PENDING
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("secret", [PADDED, UNPADDED], ids=["padded", "unpadded"])
def test_our_signatures_pass_the_reference_librarys_verify(secret) -> None:
    timestamp = int(datetime.now(tz=UTC).timestamp())
    headers = signatures.standard_headers(BODY, secret, msg_id="msg_ours_1", timestamp=timestamp)
    assert Webhook(secret).verify(BODY, headers) is not None
    forged = {**headers, "webhook-id": "msg_ours_2"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, forged)


def test_a_malformed_whsec_secret_is_a_check_error(settings) -> None:
    use_secret(settings, "whsec_not*base64!")
    messages = [m for m in check_settings() if m.id == "tapestry_media.E006"]
    assert len(messages) == 1
    assert "WEBHOOK_SECRETS'][0]" in messages[0].msg
    assert "not*base64" not in messages[0].msg  # the secret itself is never printed


@pytest.mark.parametrize("secret", [PADDED, UNPADDED, "a plain ittybit secret"])
def test_usable_secrets_raise_no_check_error(settings, secret) -> None:
    use_secret(settings, secret)
    assert "tapestry_media.E006" not in [m.id for m in check_settings()]
