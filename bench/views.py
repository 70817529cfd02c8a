"""The peers of the webhook benchmark: what a host would write instead of using the app.

Both verify the same HMAC as the app's endpoint (``Ittybit-Signature``: hex HMAC-SHA256 of the
body with the same secret) and then, in one transaction, insert the delivery into a minimal
event table (its unique key refuses a repeat) and lock and update a minimal task table
(``bench/minimal/models.py``) — the host's own tables, never the app's. ``bare_webhook`` is a
plain Django view, ``DRFWebhook`` a DRF ``APIView`` doing the same. No forward-only merge, no
submission, no signals: the floor a host would compare the app against.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .minimal.models import PeerEvent, PeerTask


def _signed(body: bytes, signature: str) -> bool:
    secret = settings.TAPESTRY_MEDIA["WEBHOOK_SECRETS"][0].encode()
    return hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).hexdigest(), signature)


def _apply(body: bytes) -> tuple[int, dict[str, str]]:
    """Store the delivery and apply it to its task in one transaction: (HTTP status, answer)."""
    try:
        task = json.loads(body)
        remote_id, status = str(task["id"]), str(task["status"])
    except (ValueError, KeyError, TypeError):
        return 400, {"detail": "not a task"}
    now = timezone.now()
    output = task.get("output") or {}
    try:
        with transaction.atomic():
            PeerEvent.objects.create(
                dedup_key=hashlib.sha256(body).hexdigest(),
                remote_task_id=remote_id,
                status=status,
                body=body.decode(),
            )
            row = PeerTask.objects.select_for_update().filter(remote_id=remote_id).first()
            if row is None:
                raise LookupError(remote_id)
            row.status = status
            row.progress = task.get("progress")
            row.output_url = output.get("url", "") if isinstance(output, dict) else ""
            row.updated_at = now
            row.finished_at = now if status in ("succeeded", "failed") else None
            row.save(
                update_fields=("status", "progress", "output_url", "updated_at", "finished_at")
            )
    except IntegrityError:
        return 200, {"status": "duplicate"}
    except LookupError:
        return 404, {"detail": "unknown task"}
    return 200, {"status": "applied"}


@csrf_exempt
def bare_webhook(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "POST only"}, status=405)
    body = request.body
    if not _signed(body, request.headers.get("Ittybit-Signature", "")):
        return JsonResponse({"detail": "bad signature"}, status=401)
    status, answer = _apply(body)
    return JsonResponse(answer, status=status)


class DRFWebhook(APIView):
    authentication_classes = ()
    permission_classes = ()

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = request.body
        if not _signed(body, request.headers.get("Ittybit-Signature", "")):
            return Response({"detail": "bad signature"}, status=401)
        status, answer = _apply(body)
        return Response(answer, status=status)


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")
