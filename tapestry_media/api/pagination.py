"""Cursor pagination: stable under inserts and no ``COUNT(*)`` over a large table."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    """``?limit=`` (1 to 100, default 25) and the opaque ``next``/``previous`` links.

    Ordered by primary key, newest first: unique (what a cursor needs) and indexed, where the
    task table has no index on ``created_at``."""

    ordering = "-pk"
    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
