"""A host with a database router (tests/routers.py): this app's models and the user model on
a second alias, ``media``; ``default`` holds the rest (sessions, admin log). The custom user
model comes along (tests.settings_custom_user). SQLite files by default, or
DATABASE_URL/MEDIA_DATABASE_URL."""

from __future__ import annotations

import os

from .settings import env
from .settings_custom_user import *  # noqa: F403


def _sqlite_file(alias: str) -> dict[str, object]:
    directory = os.environ.get("TMPDIR", "/tmp")
    path = os.path.join(directory, f"tapestry-router-{alias}-{os.getpid()}.sqlite3")
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "TEST": {"NAME": path}}


DATABASES = {
    "default": env.db("DATABASE_URL") if "DATABASE_URL" in os.environ else _sqlite_file("default"),
    "media": (
        env.db("MEDIA_DATABASE_URL")
        if "MEDIA_DATABASE_URL" in os.environ
        else _sqlite_file("media")
    ),
}
DATABASE_ROUTERS = ["tests.routers.MediaRouter"]
