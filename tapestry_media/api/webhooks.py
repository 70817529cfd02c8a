"""``POST /…/webhooks/ittybit/``: where the task API (or the local engine) reports results.

The view sets every DRF policy itself, so a host's ``REST_FRAMEWORK`` defaults (authentication,
permissions, parsers, renderers, throttles, versioning) cannot change it. Answers:

* 200 ``{"status": …}`` — stored (and applied, unless it is a repeat);
* 400 — not JSON (too deeply nested, an unpaired surrogate, a NUL…), or not a task object /
  event envelope (with the reason);
* 401 — missing, malformed or wrong signature, stale timestamp, unusable secrets;
* 405 — any method but POST; 413 — body above ``WEBHOOK_MAX_BODY_BYTES``;
* 500 — applying the stored event failed (the error is kept on the event row); the API
  retries, and the retry processes the stored event again.

Nothing is written before the signature checks out, and nothing here calls the task API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db import connections, transaction
from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import signatures, webhooks
from ..backends import webhook_keys
from ..conf import get_settings
from ..remote import PayloadError

logger = logging.getLogger("tapestry_media.api.webhooks")

_CONFIGURATION_PROBLEMS = frozenset({"no_secrets", "malformed_secret"})
NO_SECRETS = "no webhook secrets are configured: set TAPESTRY_MEDIA['WEBHOOK_SECRETS']."


class BodyTooLarge(Exception):
    pass


class AlwaysJSON(BaseContentNegotiation):
    """Answer JSON whatever the client's ``Accept`` says: a webhook sender cannot negotiate."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class SecretsFilter(SafeExceptionReporterFilter):
    """Hides the variables marked ``@sensitive_variables`` even with ``DEBUG=True`` (Django's
    own filter shows everything then): this URL is public, so its error page is too."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True


class WebhookView(APIView):
    http_method_names = ["post"]
    authentication_classes: Sequence[type] = ()
    permission_classes: Sequence[type] = ()  # anyone may POST: the signature is the check
    # No parsers: the signature covers the raw bytes, so ``request.data`` is never used.
    parser_classes: Sequence[type] = ()
    renderer_classes = [JSONRenderer]
    throttle_classes: Sequence[type] = ()
    content_negotiation_class = AlwaysJSON
    versioning_class = None

    def perform_authentication(self, request: Request) -> None:
        """No authentication classes, so nothing to do (DRF would build an anonymous user)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        request.exception_reporter_filter = SecretsFilter()
        return super().dispatch(request, *args, **kwargs)

    @sensitive_variables("config", "keys")
    def post(self, request: Request) -> Response:
        config = get_settings()
        raw: HttpRequest = request._request
        try:
            body = read_body(raw, config.WEBHOOK_MAX_BODY_BYTES)
        except BodyTooLarge:
            return error(413, f"the body is larger than {config.WEBHOOK_MAX_BODY_BYTES} bytes.")
        # Every key is tried on the raw bytes; nothing is parsed before one matches.
        keys = webhook_keys()
        try:
            scheme, index = signatures.match(
                raw.headers,
                body,
                [key.secret for key in keys],
                tolerance=config.WEBHOOK_TOLERANCE,
            )
        except signatures.SignatureError as exc:
            if exc.reason == "bad_signature" and not config.WEBHOOK_SECRETS:
                # Only a backend's scoped key was tried: the senders' secrets are missing.
                exc = signatures.SignatureError("no_secrets", NO_SECRETS)
            log = logger.error if exc.reason in _CONFIGURATION_PROBLEMS else logger.warning
            log("webhook refused (%s): %s", exc.reason, exc.message)
            return error(401, exc.message, code=exc.reason)
        try:
            receipt = webhooks.deliver(
                body, headers=raw.headers, scheme=scheme, scope=keys[index].scope
            )
        except PayloadError as exc:
            return error(400, str(exc), code="invalid_payload")
        except webhooks.ProcessingError as exc:
            return error(
                500,
                "the delivery was stored but could not be applied; it is applied again when "
                "it is delivered again.",
                code="processing_failed",
                event=exc.event_pk,
            )
        return Response({"status": receipt.status, "event": receipt.event_pk})


def as_webhook_view(view: Callable[..., Any]) -> Callable[..., Any]:
    """Exempt ``view`` from CSRF, from ``LoginRequiredMiddleware`` and from ``ATOMIC_REQUESTS``
    (the event insert and the row lock must commit on their own, not at the end of a request
    transaction)."""
    for alias in connections:
        view = transaction.non_atomic_requests(alias)(view)
    return login_not_required(csrf_exempt(view))


#: The view to route to (``tapestry_media.urls`` does).
webhook_view = as_webhook_view(WebhookView.as_view())


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, refusing anything above ``limit`` bytes before reading it when the
    ``Content-Length`` says so. Read from the stream rather than ``request.body``, whose
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` check would answer 400 instead of 413."""
    declared = str(request.META.get("CONTENT_LENGTH") or "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge
    return body


def error(status: int, detail: str, *, code: str = "", **extra: Any) -> Response:
    data: dict[str, Any] = {"detail": detail}
    if code:
        data["code"] = code
    data.update(extra)
    return Response(data, status=status)
