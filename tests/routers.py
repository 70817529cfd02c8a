"""A host's database router: this app's models and the user model on the ``media`` alias,
with what points at the user (auth's permissions and the contenttypes they join, the admin
log); everything else (sessions) on ``default``."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

MEDIA_APPS = frozenset({"tapestry_media", "custom_user", "auth", "contenttypes", "admin"})


class MediaRouter:
    alias = "media"

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return self.alias if model._meta.app_label in MEDIA_APPS else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        if obj1._meta.app_label in MEDIA_APPS and obj2._meta.app_label in MEDIA_APPS:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return (db == self.alias) == (app_label in MEDIA_APPS)
