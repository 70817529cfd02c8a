"""Who may use the API. Querysets are scoped with ``for_user`` (someone else's record is a
404, never a 403 that confirms it exists); the object check below is a second line."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..models import Submission, Task, may_view_all


class IsOwnerOrStaff(BasePermission):
    """Signed-in users; objects of their own (uploaded, or created by them), or any object of
    a model they hold the ``view_…`` permission for. ``is_staff`` alone grants nothing here."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        user = request.user
        if isinstance(obj, Submission | Task) and may_view_all(user, type(obj)):
            return True
        if isinstance(obj, Submission):
            return obj.uploader_id == user.pk
        if isinstance(obj, Task):
            owner = obj.submission.uploader_id if obj.submission is not None else None
            return user.pk in (owner, obj.created_by_id)
        return False
