"""The baseline of the webhook benchmark: a bare Django view doing the same row writes as the
app's webhook path for a first delivery — verify the HMAC signature, insert the event row,
update the task row, update the submission — with none of the app's machinery (no DRF, no
dedup handling, no row lock, no forward-only merge, no aggregate, no signals)."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from tapestry_media.models import Submission, Task, WebhookEvent

_FINISHED = {"succeeded": "ready", "failed": "failed"}


@csrf_exempt
def bare_webhook(request: HttpRequest) -> HttpResponse:
    body = request.body
    secret = settings.TAPESTRY_MEDIA["WEBHOOK_SECRETS"][0].encode()
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("Ittybit-Signature", "")):
        return JsonResponse({"detail": "bad signature"}, status=401)
    payload = json.loads(body)
    task = payload.get("data", payload)
    status = task["status"]
    now = timezone.now()
    WebhookEvent.objects.create(
        dedup_key="bare:" + hashlib.sha256(body).hexdigest(),
        event_id=payload.get("id", "") if "data" in payload else "",
        topic=f"task.{status}",
        remote_task_id=task["id"],
        raw_status=status,
        body=body.decode(),
        processed_at=now,
    )
    output = task.get("output") or None
    Task.objects.filter(remote_id=task["id"]).update(
        status=status,
        raw_status=status,
        progress=100 if status == "succeeded" else task.get("progress"),
        output=output,
        output_url=(output or {}).get("url", ""),
        finished_at=now,
        updated_at=now,
    )
    Submission.objects.filter(tasks__remote_id=task["id"]).update(
        status=_FINISHED.get(status, "processing"), updated_at=now
    )
    return JsonResponse({"status": "applied"})


#: The same view with its three writes in one transaction (one commit, as the app's delivery).
bare_webhook_atomic = csrf_exempt(transaction.atomic(bare_webhook))


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")
