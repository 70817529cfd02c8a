"""Cursor pagination: stable under inserts and no ``COUNT(*)`` over a large table."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from .schema import NO_NUL


class NewestFirst(CursorPagination):
    """``?limit=`` (1 to 100, default 25; anything else is a 400) and the opaque
    ``next``/``previous`` links.

    Ordered by primary key, newest first: unique (what a cursor needs) and indexed, where the
    task table has no index on ``created_at``."""

    ordering = "-pk"
    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {"limit": f"must be a whole number from 1 to {self.max_page_size}."}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
            elif param["name"] == self.cursor_query_param:
                param["schema"] = {"type": "string", "pattern": NO_NUL}
        return params
