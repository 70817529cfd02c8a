"""Admin actions as buttons on a change page ("Retry", "Resync"), beside the list's menu.

Each button posts to ``<object>/act/<action>/``, which runs the very action the changelist
runs, on that one object, with the same permission check, then returns to the change page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST


class ObjectActionsMixin(admin.ModelAdmin):  # type: ignore[type-arg]
    """List the action names in ``object_actions``; each must be one of ``actions``."""

    object_actions: tuple[str, ...] = ()
    change_form_template = "admin/tapestry_media/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        run = require_POST(self.admin_site.admin_view(self.object_action_view))
        extra = [path("<path:object_id>/act/<str:name>/", run, name=self._url_name("act"))]
        return extra + super().get_urls()

    def object_action_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is None or name not in self.object_actions:
            raise Http404
        available = self.get_actions(request)  # filtered by each action's permissions
        if name not in available or not self.has_change_permission(request, obj):
            raise PermissionDenied
        func, _ = _parts(available[name])
        func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        return HttpResponseRedirect(reverse(f"admin:{self._url_name('change')}", args=[obj.pk]))

    def object_buttons(self, request: HttpRequest, obj: Any) -> list[tuple[str, str]]:
        """``(url, label)`` of each action this user may run on ``obj``."""
        if obj is None or not self.has_change_permission(request, obj):
            return []
        available = self.get_actions(request)
        act = f"admin:{self._url_name('act')}"
        return [
            (reverse(act, args=[obj.pk, name]), _parts(available[name])[1])
            for name in self.object_actions
            if name in available
        ]

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        context["object_buttons"] = self.object_buttons(request, kwargs.get("obj"))
        return super().render_change_form(request, context, *args, **kwargs)


def _parts(entry: Any) -> tuple[Any, str]:
    """An entry of ``get_actions()``: an object with ``func``/``description`` on Django 6.1,
    a ``(func, name, description)`` tuple before."""
    if hasattr(entry, "func"):
        return entry.func, str(entry.description)
    return entry[0], str(entry[2])
