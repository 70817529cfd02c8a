"""The peers of the webhook benchmark: what a host would write instead of using the app.

Both verify the same HMAC as the app's endpoint (``Ittybit-Signature``: hex HMAC-SHA256 of the
body with the same secret) and then, in one transaction, insert the delivery into a minimal
event table (its unique key refuses a repeat) and lock and update a minimal task table
(``bench/minimal/models.py``) — the host's own tables, never the app's. ``bare_webhook`` is a
plain Django view, ``DRFWebhook`` a DRF ``APIView`` doing the same. No forward-only merge, no
submission, no signals: the floor a host would compare the app against.

``upload_webhook`` is the bare view of a host that also keeps each upload's status, as the app
does: in the same transaction, after the task, it locks the task's upload, reads the statuses of
the upload's tasks and writes the upload's status if it changed. The lock comes before the read,
so two tasks of one upload finishing at once cannot each miss the other (write skew).
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

from .minimal.models import PeerEvent, PeerTask, PeerUpload


def _signed(body: bytes, signature: str) -> bool:
    secret = settings.TAPESTRY_MEDIA["WEBHOOK_SECRETS"][0].encode()
    return hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).hexdigest(), signature)


def upload_status(statuses: set[str]) -> str:
    """An upload's status from its tasks' statuses."""
    if statuses <= {"succeeded"}:
        return "ready"
    if not statuses <= {"succeeded", "failed", "cancelled"}:
        return "processing"
    return "partial" if "succeeded" in statuses else "failed"


def _refresh_upload(upload_id: int, now: Any) -> None:
    upload = PeerUpload.objects.select_for_update().get(pk=upload_id)
    statuses = set(PeerTask.objects.filter(upload_id=upload_id).values_list("status", flat=True))
    status = upload_status(statuses)
    if status != upload.status:
        upload.status = status
        upload.updated_at = now
        upload.save(update_fields=("status", "updated_at"))


def _apply(body: bytes, *, uploads: bool = False) -> tuple[int, dict[str, str]]:
    """Store the delivery and apply it to its task (and with ``uploads`` its upload) in one
    transaction: (HTTP status, answer)."""
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
            if uploads and row.upload_id is not None:
                _refresh_upload(row.upload_id, now)
    except IntegrityError:
        return 200, {"status": "duplicate"}
    except LookupError:
        return 404, {"detail": "unknown task"}
    return 200, {"status": "applied"}


def _plain(request: HttpRequest, *, uploads: bool) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "POST only"}, status=405)
    body = request.body
    if not _signed(body, request.headers.get("Ittybit-Signature", "")):
        return JsonResponse({"detail": "bad signature"}, status=401)
    status, answer = _apply(body, uploads=uploads)
    return JsonResponse(answer, status=status)


@csrf_exempt
def bare_webhook(request: HttpRequest) -> HttpResponse:
    return _plain(request, uploads=False)


@csrf_exempt
def upload_webhook(request: HttpRequest) -> HttpResponse:
    return _plain(request, uploads=True)


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
