"""How the local engine reports: Ittybit-shaped event envelopes, signed, through the same
verification and ``webhooks.deliver`` path a cloud webhook takes — in-process by default, or
by HTTP POST to ``WEBHOOK_URL`` when one is configured.

With no ``WEBHOOK_SECRETS`` the engine signs with a key derived from ``SECRET_KEY``; that key
is accepted only for local-engine payloads (task ids ``task_local_…``), so it can never vouch
for a cloud result.
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

from .. import signatures, webhooks
from ..conf import Settings, get_settings
from ..models import LocalJob

logger = logging.getLogger("tapestry_media.local")

REMOTE_ID_PREFIX = "task_local_"
_LOCAL_MARKER = b'"' + REMOTE_ID_PREFIX.encode()


def derived_secret() -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), b"tapestry_media.local-engine.webhooks", hashlib.sha256
    ).hexdigest()


def signing_secret(config: Settings) -> str:
    return config.WEBHOOK_SECRETS[0] if config.WEBHOOK_SECRETS else derived_secret()


def accepted_secrets(body: bytes, config: Settings) -> list[str]:
    """The secrets a delivery may be signed with: the configured ones, plus the derived local
    key when the payload is a local-engine task."""
    accepted = list(config.WEBHOOK_SECRETS)
    if _LOCAL_MARKER in body and _is_local_payload(body):
        accepted.append(derived_secret())
    return accepted


def _is_local_payload(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    task = payload.get("data", payload) if isinstance(payload, dict) else None
    task_id = task.get("id") if isinstance(task, dict) else None
    return isinstance(task_id, str) and task_id.startswith(REMOTE_ID_PREFIX)


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


def receive(body: bytes, headers: dict[str, str]) -> webhooks.Receipt:
    """The in-process twin of the webhook view: verify, then deliver."""
    config = get_settings()
    scheme = signatures.verify(
        headers, body, accepted_secrets(body, config), tolerance=config.WEBHOOK_TOLERANCE
    )
    return webhooks.deliver(body, source="local", headers=headers, scheme=scheme)


def _post(url: str, body: bytes, headers: dict[str, str], config: Settings) -> None:
    response = requests.post(
        url,
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=(config.CONNECT_TIMEOUT, config.READ_TIMEOUT),
    )
    response.raise_for_status()
