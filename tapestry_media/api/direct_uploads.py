"""``POST submissions/uploads/``: a presigned POST that stores one file straight in the bucket.

The answer names the form to send (``url``, ``fields``, then the file as the last field
``file``) and the ``upload_key`` to give ``POST submissions/`` afterwards. Without a storage
that presigns, the answer is a 404 of kind ``direct_uploads_unavailable``: the multipart
``POST submissions/`` is the way to upload there.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from .. import direct_uploads
from .uploads import check_upload
from .views import Policy

SIZE_CODES = ("file_too_large", "file_empty")


class DirectUploadsUnavailable(exceptions.NotFound):
    default_code = "direct_uploads_unavailable"


class UploadTargetRequestSerializer(serializers.Serializer[Any]):
    filename = serializers.CharField(
        max_length=255, help_text="The file's name; its extension decides the content type."
    )
    size = serializers.IntegerField(
        required=False, min_value=0, help_text="The file's size in bytes, checked early."
    )


class UploadTargetSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(help_text="POST a multipart form here.")
    # A declared field, popped by the metaclass: not ``Serializer.fields``.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(),
        help_text="Send these form fields as given, then the file as the last field, `file`.",
    )
    upload_key = serializers.CharField(help_text="Give it to POST submissions/ once uploaded.")
    content_type = serializers.CharField()
    max_bytes = serializers.IntegerField()
    expires_in = serializers.IntegerField(help_text="Seconds the target stays usable.")


class UploadTarget(Policy):
    """`POST {"filename", "size"}`: where to upload one file straight to storage (a presigned
    POST whose policy fixes the key, the content type and the size limit). 404
    `direct_uploads_unavailable` when the storage cannot presign."""

    serializer_class = UploadTargetSerializer
    create_serializer_class = UploadTargetRequestSerializer
    operation_ids = {"POST": "createUploadTarget"}
    request_media_types_by_method = {"POST": ("application/json",)}

    def post(self, request: Request) -> Response:
        if not direct_uploads.available():
            raise DirectUploadsUnavailable(
                "Direct uploads are not available: the upload storage cannot presign. POST "
                "the file to submissions/ as multipart/form-data instead."
            )
        body = UploadTargetRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        filename, size = body.validated_data["filename"], body.validated_data.get("size")
        try:
            check_upload(direct_uploads.Named(filename, size))  # limits, a pipeline for it
            target = direct_uploads.new_target(request.user, filename, size)
        except (ValidationError, direct_uploads.UploadRefused) as exc:
            code = getattr(exc, "code", None) or "invalid"
            field = "size" if code in SIZE_CODES else "filename"
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise exceptions.ValidationError({field: messages}, code=code) from exc
        out = UploadTargetSerializer(
            {
                "url": target.url,
                "fields": target.fields,
                "upload_key": target.key,
                "content_type": target.content_type,
                "max_bytes": target.max_bytes,
                "expires_in": target.expires_in,
            }
        )
        return Response(out.data, status=status.HTTP_201_CREATED)
