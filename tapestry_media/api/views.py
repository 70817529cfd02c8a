"""The submissions and tasks API.

Every view sets its own DRF policy (authentication, permission, throttling, pagination,
parsers, renderers, negotiation, versioning, exception handler), so nothing in the host's
``REST_FRAMEWORK`` defaults can open or reshape it. No view calls the task API: creating a
submission or a task writes rows, and the submit jobs are enqueued after commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.db.models import F, Prefetch, QuerySet
from django.urls import URLPattern
from rest_framework import exceptions, generics, status
from rest_framework.authentication import (
    BaseAuthentication,
    BasicAuthentication,
    SessionAuthentication,
)
from rest_framework.exceptions import ValidationError
from rest_framework.metadata import BaseMetadata, SimpleMetadata
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.pagination import BasePagination
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONOpenAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.throttling import BaseThrottle
from rest_framework.versioning import BaseVersioning
from rest_framework.views import APIView

from .. import direct_uploads, pipeline
from .. import metadata as md
from ..direct_uploads import KEY_IN_USE, StoredUpload
from ..models import Submission, SubmissionStatus, Task
from ..signals import SubmitVetoed
from ..status import Status
from .errors import exception_handler
from .pagination import NewestFirst
from .permissions import IsOwnerOrStaff
from .schema import NO_NUL, TapestrySchema, metadata_schema, schema_document
from .serializers import (
    SubmissionCreateSerializer,
    SubmissionFromUploadSerializer,
    SubmissionSerializer,
    TaskCreateSerializer,
    TaskSerializer,
)
from .throttling import TapestryRateThrottle

#: Tasks on inputs other than one's own uploads: URLs, paths, other users' submissions.
SUBMIT_ANY_INPUT = "tapestry_media.submit_any_input"
_METADATA_PARAM = re.compile(r"^metadata\[([^\[\]]*)\]$")
TEXT_PARAM = {"type": "string", "pattern": NO_NUL}


def status_parameter(enum: Any, description: str) -> dict[str, Any]:
    """``?status=a,b``: a comma-separated list of ``enum``'s values."""
    return {
        "name": "status",
        "in": "query",
        "style": "form",
        "explode": False,
        "schema": {"type": "array", "items": {"type": "string", "enum": list(enum.values)}},
        "description": description,
    }


def metadata_parameter(description: str) -> dict[str, Any]:
    """The ``metadata[key]=value`` query parameter, as the OpenAPI document describes it."""
    return {
        "name": "metadata",
        "in": "query",
        "style": "deepObject",
        "explode": True,
        "schema": metadata_schema(md.MAX_KEYS),
        "description": description,
    }


class Policy(APIView):
    """The API's own settings, first in each view's MRO."""

    authentication_classes: Sequence[type[BaseAuthentication]] = (
        SessionAuthentication,
        BasicAuthentication,
    )
    permission_classes: Sequence[Any] = (IsOwnerOrStaff,)
    throttle_classes: Sequence[type[BaseThrottle]] = (TapestryRateThrottle,)
    renderer_classes: Sequence[type[BaseRenderer]] = (JSONRenderer,)
    parser_classes: Sequence[type[BaseParser]] = (JSONParser, MultiPartParser, FormParser)
    content_negotiation_class: type[BaseContentNegotiation] = DefaultContentNegotiation
    metadata_class: str | type[BaseMetadata] | None = SimpleMetadata
    versioning_class: type[BaseVersioning] | None = None
    schema: ViewInspector | None = TapestrySchema()

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # A NUL reaches PostgreSQL as a 500 ("string literal cannot contain NUL characters").
        for name, value in request.query_params.items():
            if "\x00" in name or "\x00" in value:
                raise ValidationError({name: "must not contain NUL characters."})

    def get_authenticate_header(self, request: Request) -> str:
        """401 with a Basic challenge for a client that sent Basic credentials; 403 for the
        rest, so a browser whose session ended gets no password dialog."""
        if request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("basic "):
            return BasicAuthentication().authenticate_header(request) or ""
        return ""


class ListPolicy(Policy, generics.GenericAPIView[Any]):
    pagination_class: type[BasePagination] | None = NewestFirst
    filter_backends: Sequence[Any] = ()

    #: read by the schema: operation ids and list filters
    operation_ids: dict[str, str] = {}
    query_parameters: list[dict[str, Any]] = []
    create_serializer_class: type[Any] | None = None

    def get_serializer_class(self) -> type[Any]:
        """``serializer_class`` answers; ``create_serializer_class`` reads a POST body."""
        request = getattr(self, "request", None)
        if request is not None and request.method == "POST" and self.create_serializer_class:
            return self.create_serializer_class
        return super().get_serializer_class()


# --- submissions ------------------------------------------------------------------------------


def submissions_for(user: Any) -> QuerySet[Submission]:
    current = Task.objects.filter(generation=F("submission__file_generation")).order_by(
        "-is_primary", "pk"
    )
    return Submission.objects.for_user(user).prefetch_related(
        Prefetch("tasks", queryset=current, to_attr="current")
    )


class SubmissionList(ListPolicy, generics.ListCreateAPIView[Submission]):
    """`GET`: your submissions, newest first (`?status=`, `?campaign=`).
    `POST`: multipart with `file`, `title`, `campaign`, `source`, `metadata`; or JSON with
    `upload_key` (a direct upload, see `POST submissions/uploads/`) instead of `file`."""

    serializer_class = SubmissionSerializer
    create_serializer_class = SubmissionCreateSerializer
    operation_ids = {"GET": "listSubmissions", "POST": "createSubmission"}
    response_links = {
        "201": {
            "GetSubmission": {
                "operationId": "getSubmission",
                "parameters": {"public_id": "$response.body#/id"},
            },
            "CreateTaskFromSubmission": {
                "operationId": "createTask",
                "requestBody": {"input": "$response.body#/id"},
            },
        }
    }
    request_media_types_by_method = {"POST": ("multipart/form-data",)}
    # JSON: the key of a direct upload (POST submissions/uploads/) instead of the file
    request_serializers_by_media_type = {
        "POST": {"application/json": SubmissionFromUploadSerializer}
    }
    query_parameters = [
        status_parameter(SubmissionStatus, "Comma-separated, e.g. ready,partial."),
        {"name": "campaign", "in": "query", "schema": TEXT_PARAM},
        metadata_parameter(
            "Submissions with a task of their current file whose metadata has these pairs "
            "exactly: metadata[user_id]=usr_42."
        ),
    ]

    def get_queryset(self) -> QuerySet[Submission]:
        rows = submissions_for(self.request.user)
        params = self.request.query_params
        if params.get("status"):
            rows = rows.filter(status__in=choices("status", params["status"], SubmissionStatus))
        if params.get("campaign"):
            rows = rows.filter(campaign=params["campaign"])
        pairs = metadata_params(self.request)
        if pairs:
            # The tasks' metadata index finds the matches; no index on Submission is needed.
            current = Task.objects.with_metadata(**pairs).filter(
                submission__isnull=False, generation=F("submission__file_generation")
            )
            rows = rows.filter(pk__in=current.values("submission_id"))
        return rows

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user: Any = request.user
        fields = {
            "uploader": user,
            "title": data["title"],
            "campaign": data["campaign"],
            "source": data["source"],
            "metadata": data["metadata"],
        }
        if "upload_key" in data:
            submission = claim_upload(user, data["upload_key"], fields)
        else:
            submission = Submission.objects.create(file=data["file"], **fields)
        created = submissions_for(request.user).get(pk=submission.pk)
        out = SubmissionSerializer(created, context=self.get_serializer_context())
        return Response(out.data, status=status.HTTP_201_CREATED)


class SubmissionDetail(ListPolicy, generics.RetrieveAPIView[Submission]):
    """One of your submissions with the tasks of its current file."""

    serializer_class = SubmissionSerializer
    operation_ids = {"GET": "getSubmission"}
    lookup_field = "public_id"

    def get_queryset(self) -> QuerySet[Submission]:
        return submissions_for(self.request.user)


# --- tasks ------------------------------------------------------------------------------------


class TaskList(ListPolicy, generics.ListCreateAPIView[Task]):
    """`GET`: your tasks (`?status=`, `?kind=`, `?submission=`, `?metadata[key]=`).
    `POST`: `{"input", "kind", "options", "metadata"}` like Ittybit's `POST /tasks`;
    `input` is one of your submissions (id or file name), or anything with the
    `tapestry_media.submit_any_input` permission."""

    serializer_class = TaskSerializer
    create_serializer_class = TaskCreateSerializer
    operation_ids = {"GET": "listTasks", "POST": "createTask"}
    response_links = {
        "201": {"GetTask": {"operationId": "getTask", "parameters": {"uuid": "$response.body#/id"}}}
    }
    request_media_types_by_method = {"POST": ("application/json",)}
    query_parameters = [
        status_parameter(Status, "Comma-separated task statuses, e.g. failed,cancelled."),
        {"name": "kind", "in": "query", "schema": TEXT_PARAM},
        {
            "name": "submission",
            "in": "query",
            "schema": TEXT_PARAM,
            "description": "A submission id (sub_…).",
        },
        metadata_parameter("Exact metadata matches: metadata[campaign]=summer-launch."),
    ]

    def get_queryset(self) -> QuerySet[Task]:
        rows = Task.objects.for_user(self.request.user).select_related("submission")
        params = self.request.query_params
        if params.get("status"):
            rows = rows.filter(status__in=choices("status", params["status"], Status))
        if params.get("kind"):
            rows = rows.filter(kind=params["kind"])
        if params.get("submission"):
            rows = rows.filter(submission__public_id=params["submission"])
        pairs = metadata_params(self.request)
        return rows.with_metadata(**pairs) if pairs else rows

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        any_input = request.user.has_perm(SUBMIT_ANY_INPUT)
        submission = own_submission(request.user, data["input"], any_input=any_input)
        if submission is None and not any_input:
            raise ValidationError(
                {"input": "must be one of your submissions: its id (sub_…) or its file name."}
            )
        metadata = dict(data["metadata"])
        if submission is None:
            # No submission to take them from: the request user owns the task.
            metadata["user_id"] = md.user_public_id(request.user.pk)
        try:
            with transaction.atomic(using=router.db_for_write(Task)):
                task = pipeline.submit(
                    input=submission.file.name or "" if submission is not None else data["input"],
                    kind=data["kind"],
                    options=data["options"],
                    metadata=metadata,
                    submission=submission,
                    name=data["step"] or None,
                    created_by=request.user,
                )
        except SubmitVetoed as exc:
            raise ValidationError(str(exc), code="vetoed") from exc
        except ValueError as exc:  # a step of that name exists for this file already
            raise ValidationError({"step": str(exc)}) from exc
        task = Task.objects.select_related("submission").get(pk=task.pk)
        out = TaskSerializer(task, context=self.get_serializer_context())
        return Response(out.data, status=status.HTTP_201_CREATED)


class TaskDetail(ListPolicy, generics.RetrieveAPIView[Task]):
    """One of your tasks, with its options, metadata, output, error and attempt history."""

    serializer_class = TaskSerializer
    operation_ids = {"GET": "getTask"}
    lookup_field = "uuid"
    path_parameter_schemas = {"uuid": {"type": "string", "format": "uuid"}}

    def get_queryset(self) -> QuerySet[Task]:
        return Task.objects.for_user(self.request.user).select_related("submission")


class SchemaView(Policy):
    """The OpenAPI document. Public: it describes the API and holds no data."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    renderer_classes = (JSONOpenAPIRenderer,)
    schema = None
    #: The URLs the document describes, given by ``api/urls.py`` (``as_view(patterns=…)``).
    patterns: Sequence[URLPattern] = ()

    def get(self, request: Request) -> Response:
        return Response(schema_document(self.patterns))


class NotFound(Policy):
    """Any other path under the API's prefix: the API's JSON 404, not the site's HTML page."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise exceptions.NotFound()


# --- helpers ----------------------------------------------------------------------------------


def own_submission(user: Any, value: str, *, any_input: bool) -> Submission | None:
    """The submission ``value`` names (public id or stored file name) that ``user`` may use:
    one they uploaded, or with ``submit_any_input`` anyone's. Seeing a submission (the view
    permission) is not using it.

    The public id is looked up first (its unique index), the file name only if that finds
    nothing (the index of migration 0011): one ``public_id = … OR file = …`` read the whole
    table on PostgreSQL. A value that is one usable submission's public id and another's file
    name names the first (the app's file names have a folder, ``…/sub_…/name``, so only a
    name set by hand can look like an id); of several with that file name, the newest."""
    rows = Submission.objects.all() if any_input else Submission.objects.filter(uploader=user)
    return rows.filter(public_id=value).first() or rows.filter(file=value).first()


def claim_upload(user: Any, stored: StoredUpload, fields: dict[str, Any]) -> Submission:
    """A submission on a copy of a direct upload, unless its key was claimed already.

    The user's row is locked first, so two requests claiming the same key (only its owner
    can) run one after the other and the second sees the first's submission (the public id
    :func:`~tapestry_media.direct_uploads.claimed_id` derives from the key; its unique index
    would refuse a second one anyway). Then, in this order: copy the object server-side to
    the submission's own name, which no upload target can write; create the row; once
    committed, delete the direct object. A crash after the copy leaves an orphan copy and the
    key claimable; a crash after the commit leaves the direct object: ``prune --orphans``
    deletes either once an hour old. A row refused after the copy deletes the copy."""
    using = router.db_for_write(Submission)
    with transaction.atomic(using=using):
        users = get_user_model()._default_manager.using(using).select_for_update()
        list(users.filter(pk=user.pk).values_list("pk", flat=True))
        public_id = direct_uploads.claimed_id(stored.name)
        if Submission.objects.using(using).filter(public_id=public_id).exists():
            raise ValidationError({"upload_key": KEY_IN_USE}, code="used")
        submission = Submission(public_id=public_id, **fields)
        final = direct_uploads.final_name(submission, stored)
        try:
            direct_uploads.copy_to_final(stored, final)
        except direct_uploads.UploadRefused as exc:
            raise ValidationError({"upload_key": str(exc)}, code=exc.code) from exc
        submission.file = final
        submission.file_size = stored.size
        submission.content_type = stored.content_type
        submission.media_kind = stored.media_kind
        try:
            submission.save(using=using, force_insert=True)
        except Exception:  # refused (a step's metadata…): the copy is nobody's; tidy up now
            direct_uploads.delete_copy(final)
            raise
        transaction.on_commit(
            partial(direct_uploads.delete_direct, stored.name), using=using, robust=True
        )
        return submission


def choices(name: str, raw: str, enum: Any) -> list[str]:
    values = [v.strip() for v in raw.split(",") if v.strip()]
    unknown = [v for v in values if v not in enum.values]
    if unknown:
        raise ValidationError(
            {name: f"unknown value {unknown[0]!r}; use one of: {', '.join(enum.values)}."}
        )
    return values


def metadata_params(request: Request) -> dict[str, str]:
    pairs = {}
    for key, value in request.query_params.items():
        match = _METADATA_PARAM.match(key)
        if match:
            pairs[match[1]] = value
    try:
        return md.validate_metadata(pairs)
    except md.MetadataError as exc:
        raise ValidationError({"metadata": str(exc)}) from exc
