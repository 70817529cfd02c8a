"""Representations of submissions and tasks, and the bodies that create them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import models
from rest_framework import serializers
from rest_framework.fields import empty

from .. import metadata as md
from ..direct_uploads import KEY_IN_USE, StoredUpload, UploadRefused, check_key, claimed_id
from ..links import drop_unsafe_links
from ..models import Submission, Task
from ..remote import public_error
from ..status import Status
from .outputs import output_src, with_read_time_urls
from .uploads import check_upload

_BRACKET = re.compile(r"^metadata\[([^\[\]]*)\]$")
_STEP = re.compile(r"^(?:[a-z][a-z0-9_-]{0,39})?$")  # blank: the kind names the step
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ISO = "iso-8601"
URL = {"type": "string", "format": "uri"}
ERROR = {
    "type": "object",
    "nullable": True,
    "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
}
#: "" until there is one (a step not finished yet, a submission without a file)
URL_OR_EMPTY = {"anyOf": [URL, {"type": "string", "maxLength": 0}]}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
TASK_JSON_SCHEMAS: dict[str, Any] = {
    "options": {"type": "object"},
    "metadata": STRING_MAP,
    "output": {
        "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
        "nullable": True,
    },
    "error": ERROR,
    "attempts": {
        "type": "array",
        "description": "Earlier attempts, oldest first.",
        "items": {
            "type": "object",
            "properties": {
                "attempt": {"type": "integer"},
                "remote_id": {"type": "string", "nullable": True},
                "status": {"type": "string"},
                "error": {"type": "object", "nullable": True},
                "ended_at": {"type": "string", "format": "date-time"},
            },
        },
    },
}


def server_owned_keys() -> tuple[str, ...]:
    """Keys a client may send but the server always sets: ``user_id`` (the request user or
    the submission's uploader), ``submission_id`` and the correlation key."""
    return md.reserved_keys(for_submission=True)


class MetadataField(serializers.Field[dict[str, str], Any, Any, Any]):
    """An object of string keys to string values, as JSON (an object, or a JSON string in a
    multipart form) and/or as ``metadata[key]=value`` form fields. Server-owned keys are
    dropped: the server sets them from the request user and the submission."""

    default_error_messages = {
        "not_json": 'must be a JSON object such as {{"order_id": "A-1"}}: {reason}.',
        "not_object": "must be a JSON object of string keys to string values.",
    }

    def get_value(self, dictionary: Mapping[str, Any]) -> Any:
        value = dictionary.get(self.field_name or "metadata", empty)
        pairs = {}
        for key in dictionary:
            match = _BRACKET.match(str(key))
            if match:
                pairs[match[1]] = dictionary.get(key)
        if value is empty and not pairs:
            return empty
        return {"value": value, "pairs": pairs}

    def to_internal_value(self, data: Any) -> dict[str, str]:
        value = data.get("value", empty) if isinstance(data, dict) else data
        pairs = data.get("pairs", {}) if isinstance(data, dict) else {}
        merged: dict[str, Any] = {}
        if isinstance(value, str):
            if value.strip():
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    self.fail("not_json", reason=exc)
            else:
                value = {}
        if value is not empty and value is not None:
            if not isinstance(value, dict):
                self.fail("not_object")
            merged.update(value)
        merged.update(pairs)
        try:
            clean = md.validate_metadata(merged, max_keys=md.client_key_limit())
        except md.MetadataError as exc:
            raise serializers.ValidationError(str(exc), code="invalid_metadata") from exc
        for key in server_owned_keys():
            clean.pop(key, None)
        return clean

    def to_representation(self, value: Any) -> Any:
        return value


class IsoDateTimeField(serializers.DateTimeField):
    """ISO 8601 whatever the host's ``REST_FRAMEWORK["DATETIME_FORMAT"]`` says."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", ISO)
        super().__init__(**kwargs)


class PinnedModelSerializer(serializers.ModelSerializer[Any]):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: IsoDateTimeField,
    }


class TaskSummarySerializer(PinnedModelSerializer):
    """A step of a submission, as its status page needs it."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    step = serializers.CharField(source="name", read_only=True)
    output_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    method_field_schemas: dict[str, Any] = {"output_url": URL_OR_EMPTY, "error": ERROR}
    field_schemas = TASK_JSON_SCHEMAS

    class Meta:
        model = Task
        fields = (
            "id",
            "step",
            "kind",
            "status",
            "progress",
            "is_primary",
            "output_url",
            "error",
            "updated_at",
        )
        read_only_fields = fields

    def get_output_url(self, task: Task) -> str:
        return absolute(self.context, output_src(task)) if task.status == Status.SUCCEEDED else ""

    def get_error(self, task: Task) -> dict[str, str] | None:
        return public_error(task.error)


class OutputField(serializers.JSONField):
    """The task's result as stored, a stored file's ``url`` as the storage gives it now, and
    without a ``url``/``src`` that is not http(s) or a path: a row written some other way must
    not hand a client a ``javascript:`` link."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> Any:
        output = with_read_time_urls(value, lambda url: absolute(self.context, url))
        return super().to_representation(drop_unsafe_links(output)[0])


class TaskSerializer(TaskSummarySerializer):
    submission = serializers.SerializerMethodField()
    output = OutputField()
    attempts = serializers.SerializerMethodField()

    method_field_schemas = {
        "output_url": URL_OR_EMPTY,
        "error": ERROR,
        "attempts": TASK_JSON_SCHEMAS["attempts"],
        "submission": {"type": "string", "nullable": True, "example": "sub_5f0c2a9e1b7d4c3a"},
    }

    class Meta:
        model = Task
        fields = (
            "id",
            "step",
            "kind",
            "status",
            "raw_status",
            "progress",
            "is_primary",
            "input",
            "options",
            "metadata",
            "output",
            "output_url",
            "error",
            "attempt",
            "attempts",
            "remote_id",
            "backend",
            "submission",
            "created_at",
            "updated_at",
            "submitted_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields

    def get_submission(self, task: Task) -> str | None:
        return task.submission.public_id if task.submission is not None else None

    def get_attempts(self, task: Task) -> list[dict[str, Any]]:
        """Earlier attempts, their errors as users see them (no ``detail``)."""
        attempts = task.attempts if isinstance(task.attempts, list) else []
        return [
            {**entry, "error": public_error(entry.get("error"))}
            if isinstance(entry, dict)
            else entry
            for entry in attempts
        ]


class SubmissionSerializer(PinnedModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    user_id = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    generation = serializers.IntegerField(source="file_generation", read_only=True)
    tasks = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()

    method_field_schemas = {
        "user_id": {"type": "string", "nullable": True, "example": "usr_42"},
        "file_url": URL_OR_EMPTY,
        "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/TaskSummary"}},
        "outputs": {
            "type": "object",
            "additionalProperties": URL,
            "example": {"video": "https://…/video.mp4", "poster": "https://…/poster.jpg"},
        },
    }
    field_schemas = {"metadata": STRING_MAP}

    class Meta:
        model = Submission
        fields = (
            "id",
            "title",
            "campaign",
            "source",
            "metadata",
            "media_kind",
            "status",
            "user_id",
            "file_url",
            "file_size",
            "content_type",
            "generation",
            "tasks",
            "outputs",
            "created_at",
            "updated_at",
            "processed_at",
        )
        read_only_fields = fields

    def get_user_id(self, submission: Submission) -> str | None:
        if submission.uploader_id is None:
            return None
        return md.user_public_id(submission.uploader_id)

    def get_file_url(self, submission: Submission) -> str:
        return absolute(self.context, submission.file.url) if submission.file else ""

    def get_tasks(self, submission: Submission) -> list[dict[str, Any]]:
        data: Any = TaskSummarySerializer(
            current_tasks(submission), many=True, context=self.context
        ).data
        return list(data)

    def get_outputs(self, submission: Submission) -> dict[str, str]:
        """``{step: url}`` of the finished steps, e.g. ``{"video": …, "poster": …}``."""
        outputs = {}
        for task in current_tasks(submission):
            src = output_src(task) if task.status == Status.SUCCEEDED else ""
            if src:
                outputs[task.name or task.kind] = absolute(self.context, src)
        return outputs


class SubmissionCreateSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(
        required=False,
        allow_empty_file=False,
        use_url=False,
        help_text="The media file; its name's extension must be an allowed one (mp4, png, …). "
        "Or send `upload_key` instead.",
    )
    upload_key = serializers.CharField(
        required=False,
        max_length=500,
        help_text="Instead of `file`: the `upload_key` of a file you uploaded to the target "
        "`POST submissions/uploads/` gave.",
    )
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    campaign = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    # A declared field, popped by the metaclass: not ``Field.source``.
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=100, required=False, allow_blank=True, default=""
    )
    metadata = MetadataField(required=False, default=dict)

    def validate_file(self, upload: UploadedFile[Any]) -> UploadedFile[Any]:
        check_upload(upload)
        return upload

    def validate_upload_key(self, key: str) -> StoredUpload:
        user = self.context["request"].user
        try:
            stored = check_key(user, key)
        except UploadRefused as exc:
            if (
                exc.code == "not_uploaded"
                and Submission.objects.filter(public_id=claimed_id(key)).exists()
            ):  # claimed: its direct object was deleted
                raise serializers.ValidationError(KEY_IN_USE, code="used") from exc
            raise serializers.ValidationError(str(exc), code=exc.code) from exc
        check_upload(stored)  # a pipeline for its media kind
        return stored

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("file" in attrs) == ("upload_key" in attrs):
            raise serializers.ValidationError(
                {
                    "file": "send the file as 'file', or the key of a direct upload as "
                    "'upload_key': one of the two."
                },
                code="required",
            )
        # campaign/source are fields and become metadata; one value each, not two.
        meta = attrs["metadata"]
        for key in ("campaign", "source"):
            if key in meta:
                value = meta.pop(key)
                if attrs[key] and attrs[key] != value:
                    raise serializers.ValidationError(
                        {key: f"differs from metadata[{key!r}]; send it once, as {key!r}."}
                    )
                attrs[key] = value
        return attrs


class SubmissionFromUploadSerializer(SubmissionCreateSerializer):
    """The JSON body of ``POST submissions/``: a direct upload's key instead of the file."""

    file = None  # type: ignore[assignment]  # not in a JSON body
    upload_key = serializers.CharField(
        max_length=500,
        help_text="The `upload_key` `POST submissions/uploads/` gave, once the file is "
        "uploaded to its target. A key makes one submission.",
    )


class TaskCreateSerializer(serializers.Serializer[Any]):
    """Like Ittybit's ``POST /tasks``: ``input``, ``kind``, ``options``, ``metadata``."""

    input = serializers.CharField(
        max_length=2000,
        help_text="One of your submissions: its id (sub_…) or its stored file name.",
    )
    kind = serializers.RegexField(_KIND, max_length=40)
    options = serializers.JSONField(required=False, default=dict)
    metadata = MetadataField(required=False, default=dict)
    step = serializers.RegexField(_STEP, required=False, allow_blank=True, default="")

    def validate_options(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError('must be a JSON object, e.g. {"width": 1280}.')
        return value


def current_tasks(submission: Submission) -> list[Task]:
    """The prefetched current-generation tasks (see ``views.submissions``), else a query."""
    prefetched = getattr(submission, "current", None)
    if prefetched is not None:
        return list(prefetched)
    return list(submission.current_tasks().order_by("-is_primary", "pk"))


def absolute(context: Mapping[str, Any], url: str) -> str:
    request = context.get("request")
    if not url or request is None or "://" in url:
        return url
    built: str = request.build_absolute_uri(url)
    return built
