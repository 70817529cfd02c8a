"""How the local engine reports: Ittybit-shaped event envelopes, signed, through the same
verification and ``webhooks.deliver`` path a cloud webhook takes — in-process by default, or
by HTTP POST to ``WEBHOOK_URL`` when one is configured.

With no ``WEBHOOK_SECRETS`` the engine signs with a key derived from ``SECRET_KEY``; that key
is scoped to the local backend (``LocalBackend.webhook_keys``): what it signs may change only
tasks whose ``backend`` is ``local``, whatever ids the body names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import signatures, webhooks
from ..backends import webhook_keys
from ..conf import Settings, get_settings
from ..models import LocalJob

logger = logging.getLogger("tapestry_media.local")

REMOTE_ID_PREFIX = "task_local_"


@sensitive_variables()
def derived_secret() -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), b"tapestry_media.local-engine.webhooks", hashlib.sha256
    ).hexdigest()


@sensitive_variables()
def signing_secret(config: Settings) -> str:
    return config.WEBHOOK_SECRETS[0] if config.WEBHOOK_SECRETS else derived_secret()


def task_object(job: LocalJob) -> dict[str, Any]:
    """The job as the API's task object (metadata echoed unchanged)."""
    return {
        "id": job.remote_id,
        "object": "task",
        "kind": job.kind,
        "status": job.state,
        "progress": job.progress,
        "input": job.input,
        "options": job.options,
        "metadata": job.metadata,
        "output": job.output,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "updated_at": job.updated_at.isoformat() if job.updated_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def event_body(job: LocalJob, topic: str) -> bytes:
    envelope = {
        "id": f"evt_local_{secrets.token_hex(10)}",
        "object": "event",
        "kind": topic,
        "created_at": timezone.now().isoformat(),
        "data": task_object(job),
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


@sensitive_variables("config")
def report(job: LocalJob, topic: str) -> None:
    """Sign and deliver one event about ``job``. A failed delivery is logged: the job's state
    is kept, and ``resync`` (``backend.get``) recovers it."""
    config = get_settings()
    body = event_body(job, topic)
    headers = {"Ittybit-Signature": signatures.sign_ittybit(body, signing_secret(config))}
    url = job.webhook_url or config.WEBHOOK_URL
    try:
        if url:
            _post(url, body, headers, config)
        else:
            receive(body, headers)
    except Exception:
        logger.exception("could not deliver %s for %s; resync will recover it", topic, job)


@sensitive_variables("keys")
def receive(body: bytes, headers: dict[str, str]) -> webhooks.Receipt:
    """The in-process twin of the webhook view: verify, then deliver."""
    keys = webhook_keys()
    scheme, index = signatures.match(
        headers,
        body,
        [key.secret for key in keys],
        tolerance=get_settings().WEBHOOK_TOLERANCE,
    )
    return webhooks.deliver(
        body, source="local", headers=headers, scheme=scheme, scope=keys[index].scope
    )


@sensitive_variables("config")
def _post(url: str, body: bytes, headers: dict[str, str], config: Settings) -> None:
    response = requests.post(
        url,
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=(config.CONNECT_TIMEOUT, config.READ_TIMEOUT),
    )
    response.raise_for_status()
