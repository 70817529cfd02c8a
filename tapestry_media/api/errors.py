"""One error body for every answer of the submissions/tasks API that is not a success:

    {"error": {"kind": "invalid", "message": "file: …", "fields": {"file": ["…"]}}}

``kind`` is a stable machine-readable word (``invalid``, ``not_authenticated``,
``authentication_failed``, ``permission_denied``, ``not_found``, ``method_not_allowed``,
``unsupported_media_type``, ``parse_error``, ``throttled``, ``storage_unavailable``…);
``fields`` appears for validation errors only. Set on the API's views
(``get_exception_handler``), never globally.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from ..direct_uploads import StorageUnavailable

logger = logging.getLogger("tapestry_media.api")
NON_FIELD = "non_field_errors"
#: Seconds a client is asked to wait after a 503 ``storage_unavailable``.
STORAGE_RETRY_AFTER = 30


class StorageUnavailableError(exceptions.APIException):
    """503: the file storage did not answer; nothing was created. ``Retry-After`` is set."""

    status_code = 503
    default_code = "storage_unavailable"
    default_detail = (
        "The file storage is not answering right now; nothing was created. Send the same "
        "request again later (see Retry-After): the uploaded file and its key stay valid."
    )

    def __init__(self) -> None:
        super().__init__()
        self.wait = STORAGE_RETRY_AFTER  # DRF's handler turns it into Retry-After


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, StorageUnavailable):
        logger.warning("file storage unavailable: %s", exc)
        exc = StorageUnavailableError()
    # DRF's handler sets WWW-Authenticate / Retry-After and rolls back an atomic request.
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response  # not an API error: a real 500, reported as usual
    response.data = {"error": error_body(exc)}
    return response


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        return {"kind": "invalid", "message": summary(fields), "fields": fields}
    detail = exc.detail
    message = str(detail) if not isinstance(detail, list | dict) else summary(flatten(detail))
    return {"kind": str(exc.default_code), "message": message}


def flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error details → ``{field: [message, …]}`` with dotted names for nesting."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            for sub, messages in flatten(value).items():
                name = str(key) if sub == NON_FIELD else f"{key}.{sub}"
                out.setdefault(name, []).extend(messages)
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, list | dict) for item in detail):
            return {NON_FIELD: [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            for sub, messages in flatten(item).items():
                name = str(index) if sub == NON_FIELD else f"{index}.{sub}"
                out.setdefault(name, []).extend(messages)
        return out
    return {NON_FIELD: [str(detail)]}


def summary(fields: dict[str, list[str]]) -> str:
    """The first problem as one sentence, naming its field."""
    for name, messages in fields.items():
        if messages:
            return messages[0] if name == NON_FIELD else f"{name}: {messages[0]}"
    return "invalid request."
