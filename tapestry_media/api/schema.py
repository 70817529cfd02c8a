"""OpenAPI 3 schema of the API, from DRF's generator with the gaps filled: path parameters
without ``uritemplate``, explicit operation ids, query filters, separate request and response
bodies, and the shared error body. ``GET …/api/schema/`` serves it as JSON."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from django.urls import URLPattern, reverse
from rest_framework import serializers
from rest_framework.schemas.openapi import AutoSchema, SchemaGenerator

from .. import __version__
from .. import metadata as md
from .serializers import MetadataField, TaskSummarySerializer

_PATH_VARIABLE = re.compile(r"{(\w+)}")
#: DRF's CharField refuses NUL characters (and blank values unless ``allow_blank``, after
#: trimming whitespace): the schema says so, or a generated "valid" string gets a 400.
NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "example": "invalid"},
                "message": {"type": "string", "example": "file: '.exe' files are not accepted."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["kind", "message"],
        }
    },
    "required": ["error"],
}
ERRORS = {
    "400": "Invalid request: see error.fields",
    "401": "Not signed in (Basic credentials missing or wrong)",
    "403": "Not signed in (session), or not allowed",
    "404": "No such record among yours",
    "429": "Too many requests; retry after the Retry-After header",
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 0}}
}


def metadata_schema(max_keys: int) -> dict[str, Any]:
    """Metadata as the server checks it (``metadata.validate_metadata``). ``patternProperties``
    is JSON Schema (draft 4), which OpenAPI 3.0 tools read; 3.0 has no ``propertyNames``."""
    return {
        "type": "object",
        "maxProperties": max_keys,
        "patternProperties": {
            md.KEY_PATTERN: {"type": "string", "maxLength": md.MAX_VALUE_LENGTH, "pattern": NO_NUL}
        },
        "additionalProperties": False,
    }


class TapestrySchema(AutoSchema):
    """Reads from the view: ``operation_ids`` (method → id), ``query_parameters`` (list
    views), ``create_serializer_class`` (POST body), ``request_serializers_by_media_type``
    (other bodies by media type). Serializers may declare
    ``method_field_schemas`` for their ``SerializerMethodField``s."""

    def get_operation_id(self, path: str, method: str) -> str:
        ids: dict[str, str] = getattr(self.view, "operation_ids", {})
        return ids.get(method.upper()) or super().get_operation_id(path, method)

    def get_path_parameters(self, path: str, method: str) -> list[dict[str, Any]]:
        declared: dict[str, Any] = getattr(self.view, "path_parameter_schemas", {})
        return [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": declared.get(name, {"type": "string"}),
            }
            for name in _PATH_VARIABLE.findall(path)
        ]

    def get_filter_parameters(self, path: str, method: str) -> list[dict[str, Any]]:
        if method != "GET":
            return []
        params: list[dict[str, Any]] = getattr(self.view, "query_parameters", [])
        return params

    def get_request_serializer(self, path: str, method: str) -> Any:
        create = getattr(self.view, "create_serializer_class", None)
        if method == "POST" and create is not None:
            return create()
        return super().get_request_serializer(path, method)

    def get_response_serializer(self, path: str, method: str) -> Any:
        serializer_class = getattr(self.view, "serializer_class", None)
        return serializer_class() if serializer_class is not None else None

    def get_components(self, path: str, method: str) -> dict[str, Any]:
        components: dict[str, Any] = super().get_components(path, method)
        components.setdefault("TaskSummary", self.map_serializer(TaskSummarySerializer()))
        components.setdefault("Error", ERROR_SCHEMA)
        for serializer in self.other_request_bodies(method).values():
            name = self.get_component_name(serializer)
            components.setdefault(name, self.map_serializer(serializer))
        return components

    def other_request_bodies(self, method: str) -> dict[str, Any]:
        """``request_serializers_by_media_type`` of the view: a body of another shape for a
        media type (``{"POST": {"application/json": SomeSerializer}}``)."""
        declared = getattr(self.view, "request_serializers_by_media_type", {})
        return {ct: cls() for ct, cls in declared.get(method, {}).items()}

    def get_request_body(self, path: str, method: str) -> dict[str, Any]:
        body: dict[str, Any] = super().get_request_body(path, method)
        only = getattr(self.view, "request_media_types_by_method", {}).get(method)
        if body and only:
            body["content"] = {ct: s for ct, s in body["content"].items() if ct in only}
        for media_type, serializer in self.other_request_bodies(method).items():
            ref = {"$ref": f"#/components/schemas/{self.get_component_name(serializer)}"}
            body.setdefault("content", {})[media_type] = {"schema": ref}
        if body:
            body["required"] = True  # every POST body has a required field
        return body

    def get_responses(self, path: str, method: str) -> dict[str, Any]:
        responses: dict[str, Any] = super().get_responses(path, method)
        for answer in responses.values():
            answer["description"] = answer["description"] or "OK"
        ref = {"$ref": "#/components/schemas/Error"}
        for code, description in ERRORS.items():
            if code == "400" and method == "GET" and "{" in path:
                continue
            responses[code] = {
                "description": description,
                "content": {"application/json": {"schema": ref}},
            }
        responses["429"]["headers"] = RETRY_AFTER
        links: dict[str, dict[str, Any]] = getattr(self.view, "response_links", {})
        for code, named in links.items():
            if code in responses:
                responses[code]["links"] = named
        return responses

    def map_field(self, field: Any) -> dict[str, Any]:
        """``field_schemas`` (any field, e.g. JSON ones) and ``method_field_schemas`` of the
        serializer win; DRF's mapping gets the NUL and blank rules of ``CharField``."""
        declared = getattr(field.parent, "field_schemas", {})
        if isinstance(field, serializers.SerializerMethodField):
            declared = getattr(field.parent, "method_field_schemas", {})
        if field.field_name in declared:
            return copy.deepcopy(dict(declared[field.field_name]))
        if isinstance(field, MetadataField):
            return metadata_schema(md.client_key_limit())
        if isinstance(field, serializers.JSONField):
            return {"type": "object"}
        mapped: dict[str, Any] = super().map_field(field)
        if isinstance(field, serializers.CharField) and not field.read_only:
            mapped["pattern"] = NO_NUL if field.allow_blank else NOT_BLANK
        return mapped


def schema_document(patterns: Sequence[URLPattern]) -> dict[str, Any]:
    """The OpenAPI document of the API's data URLs (``patterns``; see ``api/urls.py``)."""
    prefix = reverse("tapestry_media:submission-list").removesuffix("submissions/")
    generator = SchemaGenerator(
        title="Tapestry media API",
        version=__version__,
        description=(
            "Upload media, follow its processing, create tasks like Ittybit's POST /tasks. "
            "Authenticate with a session (and CSRF token) or HTTP Basic. Errors share one "
            'body: {"error": {"kind", "message", "fields"}}.'
        ),
        patterns=list(patterns),
        url=prefix,
    )
    document: dict[str, Any] = dict(generator.get_schema(request=None, public=True))
    document["components"]["securitySchemes"] = {
        "basic": {"type": "http", "scheme": "basic"},
        "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
    }
    document["security"] = [{"basic": []}, {"session": []}]
    return document
