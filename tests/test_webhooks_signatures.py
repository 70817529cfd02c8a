"""Signatures through the endpoint: every refusal is a 4xx that writes nothing.

The vectors were computed with openssl, outside the code under test:

    BODY='{"id":"task_kat_001",...}'   # exactly KAT_BODY below
    printf '%s' "$BODY" | openssl dgst -sha256 -hmac itty_old_secret_2025
    printf '%s' "msg_kat_001.1767225600.$BODY" | openssl dgst -sha256 -mac HMAC \
        -macopt hexkey:$(printf '%s' tapestry-endpoint-key-2026 | xxd -p) -binary | base64
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import RequestFactory
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError

from tapestry_media import signatures
from tapestry_media.api.webhooks import webhook_view
from tapestry_media.checks import check_settings
from tapestry_media.models import Task, WebhookEvent
from tapestry_media.status import Status
from tapestry_media.testing.webhooks import build_webhook, webhook_url

pytestmark = pytest.mark.django_db

# whsec_ + base64("tapestry-endpoint-key-2026"), then the secret being rotated out.
CURRENT_SECRET = "whsec_dGFwZXN0cnktZW5kcG9pbnQta2V5LTIwMjY="
OLD_SECRET = "itty_old_secret_2025"

KAT_BODY = (
    b'{"id":"task_kat_001","status":"succeeded","metadata":{"user_id":"usr_abc123",'
    b'"submission_id":"sub_9182","campaign":"summer-launch"},'
    b'"output":{"url":"https://cdn.ittybit.com/kat.mp4"}}'
)
# HMAC-SHA256(OLD_SECRET, KAT_BODY): the second secret of the list, i.e. a rotated one
KAT_ITTYBIT_OLD = "8520b195778a38ebfc62c6547b60a58a758acbb458aeaea18837205021698ddd"
# HMAC-SHA256(CURRENT_SECRET as issued, KAT_BODY)
KAT_ITTYBIT_CURRENT = "7275c7c522f14f8b7878d74c482cf580c56fc875a3dcfe1b5ad286d63955f045"
KAT_MSG_ID = "msg_kat_001"
KAT_TS = 1767225600
KAT_STANDARD = "6dlWXLlfvRySH0rnsLT2Br6u6ph1eX+Z4Zi1CCRbTjc="


@pytest.fixture(autouse=True)
def _secrets(settings) -> None:
    settings.TAPESTRY_MEDIA = {
        **settings.TAPESTRY_MEDIA,
        "WEBHOOK_SECRETS": [CURRENT_SECRET, OLD_SECRET],
    }


@pytest.fixture
def task() -> Task:
    return Task.objects.create(
        kind="video",
        input="https://tapestry-app.com/media/a.mov",
        backend="dummy",
        remote_id="task_kat_001",
        status=Status.PENDING,
        raw_status="pending",
    )


@pytest.fixture
def at_kat_time(monkeypatch) -> None:
    monkeypatch.setattr(signatures.time, "time", lambda: KAT_TS + 30)


def send(client, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(webhook_url(), data=body, content_type="application/json", headers=headers)


def snapshot(task: Task) -> dict[str, Any]:
    return Task.objects.filter(pk=task.pk).values().get()


def assert_refused(response: Any, status: int, code: str | None, task: Task, before: Any) -> None:
    assert response.status_code == status, response.content
    data = json.loads(response.content)
    if code is not None:
        assert data["code"] == code
    assert data["detail"]
    assert snapshot(task) == before
    assert not WebhookEvent.objects.exists()


# --- accepted ---------------------------------------------------------------------------------


def test_known_answer_with_the_rotated_secret_is_accepted(client, task) -> None:
    response = send(client, KAT_BODY, {"Ittybit-Signature": KAT_ITTYBIT_OLD})
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    assert task.output_url == "https://cdn.ittybit.com/kat.mp4"


def test_known_answer_with_the_current_secret_and_prefix(client, task) -> None:
    response = send(client, KAT_BODY, {"Ittybit-Signature": "sha256=" + KAT_ITTYBIT_CURRENT})
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().signature_scheme == "ittybit"


def test_known_answer_standard_webhooks(client, task, at_kat_time) -> None:
    headers = {
        "webhook-id": KAT_MSG_ID,
        "webhook-timestamp": str(KAT_TS),
        "webhook-signature": f"v1,{KAT_STANDARD}",
    }
    response = send(client, KAT_BODY, headers)
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().signature_scheme == "standard"
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED


# --- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({"Ittybit-Signature": "0" * 64}, "bad_signature", id="bad-signature"),
        pytest.param(
            {"Ittybit-Signature": KAT_ITTYBIT_OLD[:-1] + "e"}, "bad_signature", id="one-digit-off"
        ),
        pytest.param({}, "missing_header", id="missing-header"),
        pytest.param({"Ittybit-Signature": ""}, "missing_header", id="empty-header"),
        pytest.param({"Ittybit-Signature": "not-hex!"}, "malformed_header", id="not-hex"),
        pytest.param(
            {"webhook-id": KAT_MSG_ID, "webhook-signature": f"v1,{KAT_STANDARD}"},
            "missing_header",
            id="standard-without-timestamp",
        ),
        pytest.param(
            {
                "webhook-id": KAT_MSG_ID,
                "webhook-timestamp": str(KAT_TS),
                "webhook-signature": "v1,%%%not-base64",
            },
            "bad_signature",
            id="standard-garbage-signature",
        ),
        pytest.param(
            {"webhook-id": KAT_MSG_ID, "webhook-timestamp": "soon", "webhook-signature": "v1,x"},
            "malformed_header",
            id="standard-timestamp-not-a-number",
        ),
    ],
)
def test_bad_signatures_are_refused_and_change_nothing(
    client, task, at_kat_time, headers, code
) -> None:
    before = snapshot(task)
    assert_refused(send(client, KAT_BODY, headers), 401, code, task, before)


def test_wrong_secret_is_refused(client, task) -> None:
    before = snapshot(task)
    headers = {"Ittybit-Signature": signatures.sign_ittybit(KAT_BODY, "someone-elses-secret")}
    assert_refused(send(client, KAT_BODY, headers), 401, "bad_signature", task, before)


def test_tampered_body_is_refused(client, task) -> None:
    before = snapshot(task)
    tampered = KAT_BODY.replace(b"kat.mp4", b"evil.mp4")
    response = send(client, tampered, {"Ittybit-Signature": KAT_ITTYBIT_OLD})
    assert_refused(response, 401, "bad_signature", task, before)


# 30 s past the 300 s tolerance: the request is checked a moment after it is signed (seconds
# under load), so 301 could drift back inside. The exact boundary is tested in
# tests/test_signatures.py with a fixed clock.
@pytest.mark.parametrize(("offset", "code"), [(-330, "stale_timestamp"), (330, "future_timestamp")])
def test_timestamp_outside_five_minutes_is_refused(client, task, offset, code) -> None:
    before = snapshot(task)
    webhook = build_webhook(task, "succeeded", scheme="standard", timestamp=_now() + offset)
    assert_refused(send(client, webhook.body, webhook.headers), 401, code, task, before)
    # positive control: the same webhook, signed now, passes
    fresh = build_webhook(task, "succeeded", scheme="standard")
    assert send(client, fresh.body, fresh.headers).status_code == 200


def test_non_base64_whsec_secret_is_a_401_not_a_500(client, task, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": ["whsec_***"]}
    before = snapshot(task)
    headers = signatures.standard_headers(
        KAT_BODY, CURRENT_SECRET, msg_id=KAT_MSG_ID, timestamp=_now()
    )
    assert_refused(send(client, KAT_BODY, headers), 401, "malformed_secret", task, before)


def test_no_secrets_configured_refuses_everything(client, task, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": []}
    before = snapshot(task)
    response = send(client, KAT_BODY, {"Ittybit-Signature": KAT_ITTYBIT_OLD})
    assert_refused(response, 401, "no_secrets", task, before)


def test_oversized_body_is_a_413_before_the_signature(client, task, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_MAX_BODY_BYTES": 100}
    before = snapshot(task)
    # correctly signed, still refused: the limit comes first
    response = send(client, KAT_BODY, {"Ittybit-Signature": KAT_ITTYBIT_OLD})
    assert_refused(response, 413, None, task, before)
    assert "100 bytes" in response.json()["detail"]


def test_oversized_body_with_a_lying_content_length_is_a_413(task, settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_MAX_BODY_BYTES": 100}
    before = snapshot(task)
    request = RequestFactory().post(
        webhook_url(),
        data=KAT_BODY,
        content_type="application/json",
        headers={"Ittybit-Signature": KAT_ITTYBIT_OLD},
    )
    request.META["CONTENT_LENGTH"] = "50"  # the stream still holds the whole body
    response = webhook_view(request)
    response.render()
    assert_refused(response, 413, None, task, before)


def test_body_bigger_than_django_upload_limit_but_within_ours_is_accepted(
    client, task, settings
) -> None:
    """``request.body`` would refuse it (DATA_UPLOAD_MAX_MEMORY_SIZE) with a 400."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
    body = KAT_BODY[:-1] + b',"note":"' + b"x" * 200 + b'"}'
    response = send(client, body, {"Ittybit-Signature": signatures.sign_ittybit(body, OLD_SECRET)})
    assert response.status_code == 200, response.content
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe\x00", b"", b'{"id": "task_kat_001", "status": ']
)
def test_signed_invalid_json_is_a_400(client, task, body) -> None:
    before = snapshot(task)
    response = send(client, body, {"Ittybit-Signature": signatures.sign_ittybit(body, OLD_SECRET)})
    assert_refused(response, 400, "invalid_payload", task, before)
    assert "not valid JSON" in response.json()["detail"]


def test_refusals_never_reach_the_database(client, task, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert send(client, KAT_BODY, {"Ittybit-Signature": "0" * 64}).status_code == 401
    with django_assert_num_queries(0):
        body = json.dumps({"id": "x"}).encode() + b"garbage"
        headers = {"Ittybit-Signature": signatures.sign_ittybit(body, OLD_SECRET)}
        assert send(client, body, headers).status_code == 400


def _now() -> int:
    import time

    return int(time.time())


# --- as the reference libraries send it (standardwebhooks and svix, under both header names) ----

LIB_KEY = b"tapestry endpoint key, 32 bytes."
PADDED = "whsec_" + base64.b64encode(LIB_KEY).decode()
UNPADDED = PADDED.rstrip("=")


def use_secret(settings, secret: str) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "WEBHOOK_SECRETS": [secret]}


#: Each reference library's webhook class: signs with ``sign(id, when, body)``, checks with
#: ``verify(body, headers)``, and raises its error class for a bad signature.
LIBRARIES = {
    "standardwebhooks": (Webhook, WebhookVerificationError),
    "svix": (SvixWebhook, SvixVerificationError),
}


def library_headers(
    secret: str, *, prefix: str = "webhook", library: str = "standardwebhooks"
) -> dict[str, str]:
    now = datetime.now(tz=UTC)
    signer = LIBRARIES[library][0](secret)
    signature = signer.sign("msg_lib_001", now, KAT_BODY.decode())
    return {
        f"{prefix}-id": "msg_lib_001",
        f"{prefix}-timestamp": str(int(now.timestamp())),
        f"{prefix}-signature": signature,
    }


def test_unpadded_secret_really_lacks_padding() -> None:
    assert PADDED.endswith("=")
    assert not UNPADDED.endswith("=")


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("prefix", ["webhook", "svix"])
@pytest.mark.parametrize("secret", [PADDED, UNPADDED], ids=["padded", "unpadded"])
def test_a_delivery_signed_by_the_reference_library_is_applied(
    client, settings, task, prefix, secret, library
) -> None:
    use_secret(settings, secret)
    response = send(client, KAT_BODY, library_headers(secret, prefix=prefix, library=library))
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().signature_scheme == "standard"
    assert Task.objects.get(pk=task.pk).status == Status.SUCCEEDED


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_a_library_signature_with_another_key_is_refused(
    client, settings, task, prefix, library
) -> None:
    use_secret(settings, PADDED)
    other = "whsec_" + base64.b64encode(b"another key entirely, 32 bytes!!").decode()
    response = send(client, KAT_BODY, library_headers(other, prefix=prefix, library=library))
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "bad_signature"
    assert Task.objects.get(pk=task.pk).status == Status.PENDING
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("secret", [PADDED, UNPADDED], ids=["padded", "unpadded"])
def test_our_signatures_pass_the_reference_librarys_verify(secret, library) -> None:
    verifier, refused = LIBRARIES[library]
    timestamp = int(datetime.now(tz=UTC).timestamp())
    headers = signatures.standard_headers(
        KAT_BODY, secret, msg_id="msg_ours_1", timestamp=timestamp
    )
    verifier(secret).verify(KAT_BODY, headers)  # raises if it does not verify
    forged = {**headers, "webhook-id": "msg_ours_2"}
    with pytest.raises(refused):
        verifier(secret).verify(KAT_BODY, forged)


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
